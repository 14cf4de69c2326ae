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
//! input transform (input channels over `par`), the 16 GEMMs (one batched call on `par`),
//! output transform
//! (output channels over `par`); V and M live in pooled scratch.

use bitnet_gemm::Operand;
use bitnet_gemm::batched::{Batch, BatchMut};
use bitnet_simd::par::SharedOut;
use bitnet_simd::{Level, Par, ScratchPool};
use pulp::{Simd, WithSimd};

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
    let d: [[f32; 4]; 4] = core::array::from_fn(|r| core::array::from_fn(|k| d[4 * r + k]));
    bt_d_b(d, |a, b| a + b, |a, b| a - b)
}

/// `Y = Aᵀ m A`: the 2×2 outputs of one 4×4 product tile (row-major).
pub fn output_transform(m: &[f32; 16]) -> [f32; 4] {
    at_m_a(*m, |a, b| a + b, |a, b| a - b)
}

/// `Bᵀ d B` (`d[r][k]`: row r, column k; the result row-major) over any value type: f32 for one
/// tile, a vector of tiles in [`InputRow`].
#[inline(always)]
fn bt_d_b<T: Copy>(d: [[T; 4]; 4], add: impl Fn(T, T) -> T, sub: impl Fn(T, T) -> T) -> [T; 16] {
    // t = Bᵀ d, column by column.
    let t: [[T; 4]; 4] = core::array::from_fn(|k| {
        [
            sub(d[0][k], d[2][k]),
            add(d[1][k], d[2][k]),
            sub(d[2][k], d[1][k]),
            sub(d[1][k], d[3][k]),
        ]
    });
    // Then each row r of t times B.
    core::array::from_fn(|i| {
        let (r, s) = (i / 4, i % 4);
        match s {
            0 => sub(t[0][r], t[2][r]),
            1 => add(t[1][r], t[2][r]),
            2 => sub(t[2][r], t[1][r]),
            _ => sub(t[1][r], t[3][r]),
        }
    })
}

/// `Aᵀ m A` (`m` row-major; the 2×2 result row-major) over any value type.
#[inline(always)]
fn at_m_a<T: Copy>(m: [T; 16], add: impl Fn(T, T) -> T, sub: impl Fn(T, T) -> T) -> [T; 4] {
    let t0: [T; 4] = core::array::from_fn(|k| add(add(m[k], m[4 + k]), m[8 + k]));
    let t1: [T; 4] = core::array::from_fn(|k| sub(sub(m[4 + k], m[8 + k]), m[12 + k]));
    [
        add(add(t0[0], t0[1]), t0[2]),
        sub(sub(t0[1], t0[2]), t0[3]),
        add(add(t1[0], t1[1]), t1[2]),
        sub(sub(t1[1], t1[2]), t1[3]),
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
    let level = Level::active()?;
    // Both are overwritten entirely: pooled, not allocated (and page-faulted) per call.
    let pool = ScratchPool::global();
    let mut v = pool.take_uninit::<f32>(16 * c * tiles);
    let mut m = pool.take_uninit::<f32>(16 * o * tiles);
    for n in 0..shape.batch {
        // Input transform, channels over `par`: channel ic writes row ic of each V_ξ.
        let v_out = SharedOut::new(v.as_mut_ptr());
        par.for_bytes(4 * 16 * c * tiles).for_each_task(c, |ic| {
            let image = &x[(n * c + ic) * h * wd..][..h * wd];
            // The four padded input rows of a tile row, split into even and odd columns: tile
            // tj's columns 2tj .. 2tj + 3 are then e[tj], o[tj], e[tj + 1], o[tj + 1].
            let mut eo = vec![0f32; 8 * (tw + 1)];
            for ti in 0..th {
                for (a, pair) in eo.chunks_exact_mut(2 * (tw + 1)).enumerate() {
                    let (e, o) = pair.split_at_mut(tw + 1);
                    let r = unpadded(2 * ti + a, p, h);
                    for j in 0..=tw {
                        let at = |col: usize| match (r, unpadded(col, p, wd)) {
                            (Some(r), Some(q)) => image[r * wd + q],
                            _ => 0.0,
                        };
                        (e[j], o[j]) = (at(2 * j), at(2 * j + 1));
                    }
                }
                // SAFETY: row (ξ, ic) of V, tiles ti·tw .. (ti + 1)·tw, lies inside V (16 × c ×
                // tiles) and is written by this task (channel ic) alone; the 16 rows are
                // disjoint.
                let v_rows: [&mut [f32]; 16] = core::array::from_fn(|xi| unsafe {
                    core::slice::from_raw_parts_mut(v_out.at((xi * c + ic) * tiles + ti * tw), tw)
                });
                level.run(InputRow { eo: &eo, v: v_rows });
            }
        });
        // M_ξ = U_ξ · V_ξ: one batched call (small products run one per thread).
        bitnet_gemm::batched::gemm_batched(
            1.0,
            Batch::new(Operand::A, &u, 16, o * c, o, c, c, 1)?,
            Batch::new(Operand::B, &v, 16, c * tiles, c, tiles, tiles, 1)?,
            0.0,
            BatchMut::new(&mut m, 16, o * tiles, o, tiles, tiles, 1)?,
            par,
        )?;
        // Output transform, output channels over `par`.
        let planes = &mut y[n * o * oh * ow..(n + 1) * o * oh * ow];
        par.for_bytes(4 * 16 * o * tiles)
            .for_each_chunk_mut(planes, oh * ow, |start, part| {
                let mut quad = vec![0f32; 4 * tw];
                for (i, plane) in part.chunks_exact_mut(oh * ow).enumerate() {
                    let oc = start / (oh * ow) + i;
                    let b = bias.map_or(0.0, |b| b[oc]);
                    for ti in 0..th {
                        let m_rows: [&[f32]; 16] =
                            core::array::from_fn(|xi| &m[(xi * o + oc) * tiles + ti * tw..][..tw]);
                        level.run(OutputRow {
                            m: m_rows,
                            y: &mut quad,
                        });
                        // quad holds y[2ti + a][2tj + bb] at (2a + bb) · tw + tj.
                        for a in 0..2 {
                            let row_i = 2 * ti + a;
                            if row_i >= oh {
                                continue;
                            }
                            let row = &mut plane[row_i * ow..(row_i + 1) * ow];
                            for (j, y) in row.iter_mut().enumerate() {
                                *y = quad[(2 * a + j % 2) * tw + j / 2] + b;
                            }
                        }
                    }
                }
            });
    }
    Ok(())
}

/// [`input_transform`] of one tile row of one channel, tiles across the vector lanes: `eo`
/// holds the four padded input rows as (even columns, odd columns) pairs of `tw + 1` values,
/// `v[ξ]` receives `V_ξ` of the row's `tw` tiles.
struct InputRow<'a> {
    eo: &'a [f32],
    v: [&'a mut [f32]; 16],
}

impl WithSimd for InputRow<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let InputRow { eo, mut v } = self;
        let tw = v[0].len();
        let lanes = size_of::<S::f32s>() / size_of::<f32>();
        let rows: [(&[f32], &[f32]); 4] = core::array::from_fn(|a| {
            let pair = &eo[2 * a * (tw + 1)..2 * (a + 1) * (tw + 1)];
            pair.split_at(tw + 1)
        });
        for j in (0..tw).step_by(lanes) {
            let n = lanes.min(tw - j);
            let ld = |s: &[f32], at: usize| simd.partial_load_f32s(&s[at..at + n]);
            // d[a][k]: column k of input row a, for n tiles.
            let d: [[S::f32s; 4]; 4] = core::array::from_fn(|a| {
                let (e, o) = rows[a];
                [ld(e, j), ld(o, j), ld(e, j + 1), ld(o, j + 1)]
            });
            let v_tiles = bt_d_b(d, |a, b| simd.add_f32s(a, b), |a, b| simd.sub_f32s(a, b));
            for (v, &val) in v.iter_mut().zip(&v_tiles) {
                simd.partial_store_f32s(&mut v[j..j + n], val);
            }
        }
    }
}

/// [`output_transform`] of one tile row of one output channel, tiles across the vector lanes:
/// `m[ξ]` holds `M_ξ` of the row's `tw` tiles; `y` receives the four outputs of each tile as
/// four runs of `tw` (`y[2a + b]` of the tile's 2×2 block in run `2a + b`).
struct OutputRow<'a> {
    m: [&'a [f32]; 16],
    y: &'a mut [f32],
}

impl WithSimd for OutputRow<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let OutputRow { m, y } = self;
        let tw = m[0].len();
        let lanes = size_of::<S::f32s>() / size_of::<f32>();
        for j in (0..tw).step_by(lanes) {
            let n = lanes.min(tw - j);
            let mv: [S::f32s; 16] =
                core::array::from_fn(|xi| simd.partial_load_f32s(&m[xi][j..j + n]));
            let out = at_m_a(mv, |a, b| simd.add_f32s(a, b), |a, b| simd.sub_f32s(a, b));
            for (y, &val) in y.chunks_exact_mut(tw).zip(&out) {
                simd.partial_store_f32s(&mut y[j..j + n], val);
            }
        }
    }
}
