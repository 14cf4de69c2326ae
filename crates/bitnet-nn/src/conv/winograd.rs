//! Winograd F(2×2, 3×3) (Lavin & Gray): each 2×2 block of outputs from a 4×4 input tile with
//! 16 multiplications per (output, input) channel pair instead of 36.
//!
//! ```text
//! U = G g Gᵀ     (4×4 per weight 3×3 g)      G  = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1]
//! V = Bᵀ d B     (4×4 per input tile d)      Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]
//! M = Σ_c U ⊙ V  (16 GEMMs: M_ξ = U_ξ · V_ξ over channels)
//! Y = Aᵀ M A     (2×2 outputs)               Aᵀ = [1 1 1 0; 0 1 −1 −1]
//! ```
//! Layouts: transformed weights `U[ξ][o][c]` (16 × O × C), transformed inputs `V[ξ][c][t]`
//! (16 × C × tiles, tiles row-major over the `⌈OH/2⌉ × ⌈OW/2⌉` grid), products `M[ξ][o][t]`.
//! Tiles past the padded input read zeros; outputs past `OH × OW` are not stored. Per image:
//! input transform, the 16 GEMMs (on `par`), output transform.

use bitnet_gemm::{MatMut, MatRef};
use bitnet_simd::Par;

use super::{Conv2d, unpadded};
use crate::error::{NnError, check_len};

/// `U = G g Gᵀ` of every 3×3 kernel of `w` (`out_ch × in_ch × 3 × 3`): `16 × out_ch × in_ch`
/// (the log's `winograd_kernel_transform`).
pub fn kernel_transform(w: &[f32], out_ch: usize, in_ch: usize) -> Result<Vec<f32>, NnError> {
    check_len("weights", out_ch * in_ch * 9, w.len())?;
    let pairs = out_ch * in_ch;
    let mut u = vec![0f32; 16 * pairs];
    for (pair, g) in w.chunks_exact(9).enumerate() {
        // G g: 4 rows of 3.
        let mut gg = [[0f32; 3]; 4];
        for col in 0..3 {
            let (g0, g1, g2) = (g[col], g[3 + col], g[6 + col]);
            gg[0][col] = g0;
            gg[1][col] = 0.5 * (g0 + g1 + g2);
            gg[2][col] = 0.5 * (g0 - g1 + g2);
            gg[3][col] = g2;
        }
        // (G g) Gᵀ.
        for (r, row) in gg.iter().enumerate() {
            let [a, b, c] = *row;
            let t = [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
            for (s, &v) in t.iter().enumerate() {
                u[(4 * r + s) * pairs + pair] = v;
            }
        }
    }
    Ok(u)
}

/// `V = Bᵀ d B` of one 4×4 tile `d` (row-major) (the log's `winograd_input_transform`).
pub fn input_transform(d: &[f32; 16]) -> [f32; 16] {
    let row = |r: usize| [d[4 * r], d[4 * r + 1], d[4 * r + 2], d[4 * r + 3]];
    let (d0, d1, d2, d3) = (row(0), row(1), row(2), row(3));
    let mut t = [[0f32; 4]; 4];
    for k in 0..4 {
        t[0][k] = d0[k] - d2[k];
        t[1][k] = d1[k] + d2[k];
        t[2][k] = d2[k] - d1[k];
        t[3][k] = d1[k] - d3[k];
    }
    let mut v = [0f32; 16];
    for (r, tr) in t.iter().enumerate() {
        v[4 * r] = tr[0] - tr[2];
        v[4 * r + 1] = tr[1] + tr[2];
        v[4 * r + 2] = tr[2] - tr[1];
        v[4 * r + 3] = tr[1] - tr[3];
    }
    v
}

/// `Y = Aᵀ m A`: the 2×2 outputs of one 4×4 product tile (row-major).
pub fn output_transform(m: &[f32; 16]) -> [f32; 4] {
    let mut t = [[0f32; 4]; 2];
    for k in 0..4 {
        t[0][k] = m[k] + m[4 + k] + m[8 + k];
        t[1][k] = m[4 + k] - m[8 + k] - m[12 + k];
    }
    [
        t[0][0] + t[0][1] + t[0][2],
        t[0][1] - t[0][2] - t[0][3],
        t[1][0] + t[1][1] + t[1][2],
        t[1][1] - t[1][2] - t[1][3],
    ]
}

/// Winograd F(2×2, 3×3) convolution (module docs); 3×3 kernels at stride 1 only (an error
/// otherwise), any padding.
pub fn conv2d_winograd(
    shape: &Conv2d,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    par: Par,
) -> Result<(), NnError> {
    if (shape.kh, shape.kw, shape.stride) != (3, 3, 1) {
        return Err(NnError::Invalid {
            what: "conv2d_winograd",
            reason: format!(
                "F(2x2, 3x3) needs a 3x3 kernel at stride 1, not {}x{} at stride {}",
                shape.kh, shape.kw, shape.stride
            ),
        });
    }
    let (oh, ow) = shape.check(x, w, bias, y)?;
    let Conv2d {
        in_ch: c,
        height: h,
        width: wd,
        out_ch: o,
        pad: p,
        ..
    } = *shape;
    let (th, tw) = (oh.div_ceil(2), ow.div_ceil(2));
    let tiles = th * tw;
    let u = kernel_transform(w, o, c)?;
    let mut v = vec![0f32; 16 * c * tiles];
    let mut m = vec![0f32; 16 * o * tiles];
    for n in 0..shape.batch {
        for ic in 0..c {
            let image = &x[(n * c + ic) * h * wd..][..h * wd];
            for ti in 0..th {
                for tj in 0..tw {
                    let mut d = [0f32; 16];
                    for a in 0..4 {
                        let Some(r) = unpadded(2 * ti + a, p, h) else {
                            continue;
                        };
                        for b in 0..4 {
                            if let Some(q) = unpadded(2 * tj + b, p, wd) {
                                d[4 * a + b] = image[r * wd + q];
                            }
                        }
                    }
                    let t = ti * tw + tj;
                    for (xi, &val) in input_transform(&d).iter().enumerate() {
                        v[(xi * c + ic) * tiles + t] = val;
                    }
                }
            }
        }
        for xi in 0..16 {
            bitnet_gemm::gemm(
                1.0,
                MatRef::row_major(&u[xi * o * c..(xi + 1) * o * c], o, c)?,
                MatRef::row_major(&v[xi * c * tiles..(xi + 1) * c * tiles], c, tiles)?,
                0.0,
                MatMut::row_major(&mut m[xi * o * tiles..(xi + 1) * o * tiles], o, tiles)?,
                par,
            )?;
        }
        for oc in 0..o {
            let plane = &mut y[(n * o + oc) * oh * ow..][..oh * ow];
            let b = bias.map_or(0.0, |b| b[oc]);
            for ti in 0..th {
                for tj in 0..tw {
                    let t = ti * tw + tj;
                    let tile: [f32; 16] = core::array::from_fn(|xi| m[(xi * o + oc) * tiles + t]);
                    let out = output_transform(&tile);
                    for a in 0..2 {
                        for bb in 0..2 {
                            let (i, j) = (2 * ti + a, 2 * tj + bb);
                            if i < oh && j < ow {
                                plane[i * ow + j] = out[2 * a + bb] + b;
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(())
}
