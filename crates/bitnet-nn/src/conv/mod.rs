//! 2-D convolution (cross-correlation, as deep-learning frameworks define it) of NCHW images:
//! `y[n][o][i][j] = b[o] + Σ_c Σ_u Σ_v w[o][c][u][v] · x[n][c][i·s + u − p][j·s + v − p]`
//! (`s` the stride, `p` the zero padding on every side).
//!
//! - [`conv2d_direct`]: the loops as written, the valid columns of each output row computed
//!   once so that the innermost loop is a plain AXPY along the row (vectorised by the compiler
//!   at stride 1); the baseline the others are compared with.
//! - [`conv2d_im2col`]: per image, the `(C·KH·KW) × (OH·OW)` patch matrix, then one
//!   `bitnet_gemm::gemm` with the `O × (C·KH·KW)` weights.
//! - [`conv2d_winograd`]: Winograd F(2×2, 3×3) for 3×3 kernels at stride 1 ([`winograd`]): 16
//!   GEMMs of transformed weights against transformed 4×4 input tiles, then the output
//!   transform; 2.25× fewer multiplications than direct.
//!
//! Error (ε = `f32::EPSILON`, `n = C·KH·KW` terms per output, `Σ|w x|` over them): direct
//! `n ε · Σ|w x|`; im2col the GEMM's bound, `(n + 1) ε · Σ|w x|`; Winograd, whose transforms add
//! and subtract up to 4 × 4 neighbouring values, `(4n + 64) ε · max|w| · max|x| · 9C` (measured
//! and tested; it grows with the spread of the inputs, not with the exact products).

pub mod winograd;

use bitnet_gemm::{MatMut, MatRef};
use bitnet_simd::par::SharedOut;
use bitnet_simd::{Par, ScratchPool};

use crate::error::{NnError, check_len};

/// The shape of a convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2d {
    /// Images.
    pub batch: usize,
    /// Input channels.
    pub in_ch: usize,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Output channels.
    pub out_ch: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Stride (both directions).
    pub stride: usize,
    /// Zero padding on every side.
    pub pad: usize,
}

impl Conv2d {
    /// Output height and width; an error if the kernel does not fit the padded input or a size
    /// is zero.
    pub fn output_hw(&self) -> Result<(usize, usize), NnError> {
        let bad = |reason: String| NnError::Invalid {
            what: "conv2d shape",
            reason,
        };
        if self.kh == 0 || self.kw == 0 || self.stride == 0 {
            return Err(bad(format!(
                "kernel {}x{} and stride {} must be positive",
                self.kh, self.kw, self.stride
            )));
        }
        let (ph, pw) = (self.height + 2 * self.pad, self.width + 2 * self.pad);
        if ph < self.kh || pw < self.kw {
            return Err(bad(format!(
                "kernel {}x{} exceeds the padded input {ph}x{pw}",
                self.kh, self.kw
            )));
        }
        Ok((
            (ph - self.kh) / self.stride + 1,
            (pw - self.kw) / self.stride + 1,
        ))
    }

    /// Elements of the input, the weights and the output.
    pub fn lens(&self) -> Result<(usize, usize, usize), NnError> {
        let (oh, ow) = self.output_hw()?;
        let mul = |v: &[usize]| {
            v.iter()
                .try_fold(1usize, |a, &b| a.checked_mul(b))
                .ok_or_else(|| NnError::Invalid {
                    what: "conv2d shape",
                    reason: "sizes overflow".to_owned(),
                })
        };
        Ok((
            mul(&[self.batch, self.in_ch, self.height, self.width])?,
            mul(&[self.out_ch, self.in_ch, self.kh, self.kw])?,
            mul(&[self.batch, self.out_ch, oh, ow])?,
        ))
    }

    /// `Σ_c Σ_u Σ_v` terms per output.
    pub fn terms(&self) -> usize {
        self.in_ch * self.kh * self.kw
    }

    fn check(
        &self,
        x: &[f32],
        w: &[f32],
        bias: Option<&[f32]>,
        y: &[f32],
    ) -> Result<(usize, usize), NnError> {
        let (xl, wl, yl) = self.lens()?;
        check_len("input", xl, x.len())?;
        check_len("weights", wl, w.len())?;
        check_len("output", yl, y.len())?;
        if let Some(b) = bias {
            check_len("bias", self.out_ch, b.len())?;
        }
        self.output_hw()
    }
}

/// The input coordinate of padded coordinate `at` (`at − pad`) if it lies inside `0..len`
/// (else the tap reads padding, zero).
pub(crate) fn unpadded(at: usize, pad: usize, len: usize) -> Option<usize> {
    at.checked_sub(pad).filter(|&v| v < len)
}

/// The direct convolution (module docs); (image, output channel) pairs split over `par`.
pub fn conv2d_direct(
    shape: &Conv2d,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    par: Par,
) -> Result<(), NnError> {
    let (oh, ow) = shape.check(x, w, bias, y)?;
    let Conv2d {
        in_ch: c,
        height: h,
        width: wd,
        out_ch: o,
        kh,
        kw,
        stride: s,
        pad: p,
        ..
    } = *shape;
    let out = SharedOut::new(y.as_mut_ptr());
    let flops = 2 * shape.terms() * oh * ow;
    par.for_flops(flops.saturating_mul(shape.batch * o))
        .for_each_task(shape.batch * o, |task| {
            let (n, oc) = (task / o, task % o);
            // SAFETY: plane (n, oc) of y (oh·ow values inside y, checked) belongs to this task.
            let plane = unsafe { core::slice::from_raw_parts_mut(out.at(task * oh * ow), oh * ow) };
            plane.fill(bias.map_or(0.0, |b| b[oc]));
            for ic in 0..c {
                let image = &x[(n * c + ic) * h * wd..][..h * wd];
                for u in 0..kh {
                    for v in 0..kw {
                        let wv = w[((oc * c + ic) * kh + u) * kw + v];
                        for i in 0..oh {
                            // Input row of output row i, if inside the image.
                            let Some(r) = unpadded(i * s + u, p, h) else {
                                continue;
                            };
                            let row = &image[r * wd..(r + 1) * wd];
                            let dst = &mut plane[i * ow..(i + 1) * ow];
                            // Output columns j whose input column j·s + v − p is inside the row.
                            let j0 = p.saturating_sub(v).div_ceil(s);
                            let j1 = ((wd + p).saturating_sub(v)).div_ceil(s).min(ow);
                            if j0 >= j1 {
                                continue;
                            }
                            let q0 = j0 * s + v - p;
                            if s == 1 {
                                // Contiguous: one AXPY the compiler vectorises.
                                let src = &row[q0..q0 + (j1 - j0)];
                                for (d, &xv) in dst[j0..j1].iter_mut().zip(src) {
                                    *d = wv.mul_add(xv, *d);
                                }
                            } else {
                                let src = row[q0..].iter().step_by(s);
                                for (d, &xv) in dst[j0..j1].iter_mut().zip(src) {
                                    *d = wv.mul_add(xv, *d);
                                }
                            }
                        }
                    }
                }
            }
        });
    Ok(())
}

/// im2col + GEMM (module docs); the GEMM runs on `par`.
pub fn conv2d_im2col(
    shape: &Conv2d,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    par: Par,
) -> Result<(), NnError> {
    let (oh, ow) = shape.check(x, w, bias, y)?;
    let Conv2d {
        in_ch: c,
        height: h,
        width: wd,
        out_ch: o,
        kh,
        kw,
        stride: s,
        pad: p,
        ..
    } = *shape;
    let (k, cols) = (shape.terms(), oh * ow);
    if k == 0 || cols == 0 || o == 0 {
        // Nothing to compute: an empty output, or (no input channels) the bias alone.
        for (plane, oc) in y.chunks_exact_mut(cols.max(1)).zip((0..o).cycle()) {
            plane.fill(bias.map_or(0.0, |b| b[oc]));
        }
        return Ok(());
    }
    // Overwritten entirely: pooled, not allocated (and page-faulted) per call.
    let mut patches = ScratchPool::global().take_uninit::<f32>(k * cols);
    let per_channel = kh * kw * cols;
    for n in 0..shape.batch {
        // Row (ic, u, v) of the patch matrix: the inputs that meet w[·][ic][u][v]; input
        // channels over `par`.
        par.for_bytes(4 * k * cols)
            .for_each_chunk_mut(&mut patches, per_channel, |start, part| {
                for (i, rows) in part.chunks_exact_mut(per_channel).enumerate() {
                    let ic = start / per_channel + i;
                    let image = &x[(n * c + ic) * h * wd..][..h * wd];
                    for (uv, row) in rows.chunks_exact_mut(cols).enumerate() {
                        let (u, v) = (uv / kw, uv % kw);
                        for i in 0..oh {
                            let r = unpadded(i * s + u, p, h);
                            for j in 0..ow {
                                let q = unpadded(j * s + v, p, wd);
                                row[i * ow + j] = match (r, q) {
                                    (Some(r), Some(q)) => image[r * wd + q],
                                    _ => 0.0,
                                };
                            }
                        }
                    }
                }
            });
        let planes = &mut y[n * o * cols..(n + 1) * o * cols];
        let beta = match bias {
            Some(b) => {
                for (plane, &bv) in planes.chunks_exact_mut(cols).zip(b) {
                    plane.fill(bv);
                }
                1.0
            }
            None => 0.0,
        };
        bitnet_gemm::gemm(
            1.0,
            MatRef::row_major(w, o, k)?,
            MatRef::row_major(&patches, k, cols)?,
            beta,
            MatMut::row_major(planes, o, cols)?,
            par,
        )?;
    }
    Ok(())
}

pub use winograd::conv2d_winograd;
