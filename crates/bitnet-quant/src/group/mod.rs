//! Group-quantized weights: the optimisation log's 2- and 4-bit group formats and the ggml
//! blocks real GGUF files hold next to their ternary weights (Q4_0, Q4_1, Q8_0, Q4_K, Q6_K),
//! byte-compatible with llama.cpp. `docs/FORMATS.md` documents each byte by byte.
//!
//! - [`GroupFormat`] names a format; [`GroupSpec`] is the log's family (2 or 4 bits, groups of
//!   32, 64 or 128, symmetric or with a minimum), of which Q4_0 and Q4_1 are the 4-bit,
//!   32-value members.
//! - [`GroupWeights`] is a validated view of packed `rows x k` bytes (what a file holds);
//!   [`PackedGroup`] owns a quantized matrix.
//! - [`Q8x32Activations`] are the int8 activations of the 32-value formats (one f32 scale per
//!   32 values); the K-quants dot with [`crate::Q8KActivations`] as in ggml.
//! - [`reference`](mod@reference) is the scalar GEMV/GEMM, [`kernels`] the SIMD ones; [`gemm_f32`] takes f32
//!   activations instead (dequantize a row, then an f32 dot on the active level).
//!
//! Quantizers follow ggml's reference quantizers (`quantize_row_*_ref`), so that a tensor
//! quantized here has the bytes llama.cpp writes (tested against `gguf-py` for Q4_0, Q4_1 and
//! Q8_0; the K-quant quantizers follow ggml's algorithm, their bytes are not compared with a
//! C build). Dequantization is exact: the same f32 operations, in the same order, as `gguf-py`.

pub mod act;
mod codec;
mod f32_act;
mod k_quants;
pub mod kernels;
pub mod reference;

pub use act::{Q8x32Activations, QK8};
pub use f32_act::gemm_f32;
pub(crate) use k_quants::scales_mins_k4 as k_quants_scales;

use half::f16;

use crate::error::{QuantError, check_finite, check_k, check_len, elements};

/// The log's group family: `bits` per weight in groups of `size` values with an f16 scale, and
/// with an f16 minimum if `with_min`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GroupSpec {
    bits: u8,
    size: u8,
    with_min: bool,
}

impl GroupSpec {
    /// A member of the family: `bits` 2 or 4, `size` 32, 64 or 128.
    pub fn new(bits: u32, size: usize, with_min: bool) -> Result<GroupSpec, QuantError> {
        if bits != 2 && bits != 4 {
            return Err(QuantError::Invalid {
                what: "group bits",
                reason: format!("{bits} (2 or 4)"),
            });
        }
        if ![32, 64, 128].contains(&size) {
            return Err(QuantError::Invalid {
                what: "group size",
                reason: format!("{size} (32, 64 or 128)"),
            });
        }
        Ok(GroupSpec {
            bits: bits as u8,
            size: size as u8,
            with_min,
        })
    }

    /// Bits per weight code.
    pub const fn bits(self) -> u32 {
        self.bits as u32
    }

    /// Values per group.
    pub const fn size(self) -> usize {
        self.size as usize
    }

    /// Whether the group stores a minimum (`value = d·q + m`) instead of a symmetric offset
    /// (`value = d·(q − 2^(bits−1))`).
    pub const fn with_min(self) -> bool {
        self.with_min
    }

    /// The symmetric offset `2^(bits−1)` (0 with a minimum).
    pub const fn offset(self) -> i32 {
        if self.with_min {
            0
        } else {
            1 << (self.bits - 1)
        }
    }

    /// Bytes before the codes: the f16 scale, and the f16 minimum.
    pub const fn header_bytes(self) -> usize {
        if self.with_min { 4 } else { 2 }
    }

    /// Bytes per group.
    pub const fn block_bytes(self) -> usize {
        self.header_bytes() + self.size() * self.bits() as usize / 8
    }
}

/// A group-quantized weight format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupFormat {
    /// The log's 2/4-bit groups (Q4_0 and Q4_1 among them).
    Grouped(GroupSpec),
    /// ggml Q8_0: 32 i8 with an f16 scale.
    Q8_0,
    /// ggml Q4_K: 256-value super-blocks of 8 × 32 4-bit codes, 6-bit sub-scales and minimums.
    Q4K,
    /// ggml Q6_K: 256-value super-blocks of 16 × 16 6-bit codes, 8-bit sub-scales.
    Q6K,
}

/// The activations a format dots with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActivationKind {
    /// [`Q8x32Activations`]: the 32-value formats.
    Q8x32,
    /// [`crate::Q8KActivations`]: the K-quants.
    Q8K,
}

const fn spec(bits: u8, size: u8, with_min: bool) -> GroupFormat {
    GroupFormat::Grouped(GroupSpec {
        bits,
        size,
        with_min,
    })
}

impl GroupFormat {
    /// ggml Q4_0: 4-bit symmetric groups of 32 (`value = d·(q − 8)`).
    pub const Q4_0: GroupFormat = spec(4, 32, false);
    /// ggml Q4_1: 4-bit groups of 32 with a minimum (`value = d·q + m`).
    pub const Q4_1: GroupFormat = spec(4, 32, true);

    /// The ggml formats, then the log's family (2 and 4 bits, groups of 32/64/128, symmetric
    /// and with a minimum; Q4_0 and Q4_1 not repeated).
    pub const ALL: [GroupFormat; 15] = [
        GroupFormat::Q4_0,
        GroupFormat::Q4_1,
        GroupFormat::Q8_0,
        GroupFormat::Q4K,
        GroupFormat::Q6K,
        spec(4, 64, false),
        spec(4, 64, true),
        spec(4, 128, false),
        spec(4, 128, true),
        spec(2, 32, false),
        spec(2, 32, true),
        spec(2, 64, false),
        spec(2, 64, true),
        spec(2, 128, false),
        spec(2, 128, true),
    ];

    /// The ggml name, or `B<bits>[M]_G<size>` for the log's family (`M`: with a minimum).
    pub fn name(self) -> &'static str {
        match self {
            GroupFormat::Q8_0 => "Q8_0",
            GroupFormat::Q4K => "Q4_K",
            GroupFormat::Q6K => "Q6_K",
            GroupFormat::Grouped(s) => match (s.bits, s.size, s.with_min) {
                (4, 32, false) => "Q4_0",
                (4, 32, true) => "Q4_1",
                (4, 64, false) => "B4_G64",
                (4, 64, true) => "B4M_G64",
                (4, 128, false) => "B4_G128",
                (4, 128, true) => "B4M_G128",
                (2, 32, false) => "B2_G32",
                (2, 32, true) => "B2M_G32",
                (2, 64, false) => "B2_G64",
                (2, 64, true) => "B2M_G64",
                (2, 128, false) => "B2_G128",
                _ => "B2M_G128",
            },
        }
    }

    /// Values per block (`k` must be a multiple of it).
    pub fn block(self) -> usize {
        match self {
            GroupFormat::Grouped(s) => s.size(),
            GroupFormat::Q8_0 => 32,
            GroupFormat::Q4K | GroupFormat::Q6K => 256,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            GroupFormat::Grouped(s) => s.block_bytes(),
            GroupFormat::Q8_0 => codec::Q8_0_BYTES,
            GroupFormat::Q4K => k_quants::Q4K_BYTES,
            GroupFormat::Q6K => k_quants::Q6K_BYTES,
        }
    }

    /// Stored bits per weight, scales included.
    pub fn bits_per_weight(self) -> f64 {
        8.0 * self.block_bytes() as f64 / self.block() as f64
    }

    /// The activations the kernels dot it with.
    pub fn activation(self) -> ActivationKind {
        match self {
            GroupFormat::Q4K | GroupFormat::Q6K => ActivationKind::Q8K,
            _ => ActivationKind::Q8x32,
        }
    }

    /// Bytes of one packed row of `k` weights.
    pub fn row_bytes(self, k: usize) -> Result<usize, QuantError> {
        if !k.is_multiple_of(self.block()) {
            return Err(QuantError::NotMultiple {
                what: "k",
                len: k,
                block: self.block(),
                format: self.name(),
            });
        }
        Ok(k / self.block() * self.block_bytes())
    }

    /// Bytes of a packed `rows x k` tensor.
    pub fn data_len(self, rows: usize, k: usize) -> Result<usize, QuantError> {
        elements(rows, self.row_bytes(k)?)
    }

    /// Quantizes one block (`x.len() == self.block()`, finite) into `out` (`block_bytes`).
    fn quantize_block(self, x: &[f32], out: &mut [u8]) -> Result<(), QuantError> {
        match self {
            GroupFormat::Grouped(s) => codec::quantize_group(s, x, out),
            GroupFormat::Q8_0 => codec::quantize_q8_0(x, out),
            GroupFormat::Q4K => k_quants::quantize_q4_k(x, out),
            GroupFormat::Q6K => k_quants::quantize_q6_k(x, out),
        }
        .map_err(|reason| QuantError::Invalid {
            what: "weights",
            reason: format!("{}: {reason}", self.name()),
        })
    }

    /// Dequantizes one block into `out` (`self.block()` values), as `gguf-py` does.
    #[inline(always)]
    pub(crate) fn dequantize_block(self, block: &[u8], out: &mut [f32]) {
        match self {
            GroupFormat::Grouped(s) => codec::dequantize_group(s, block, out),
            GroupFormat::Q8_0 => codec::dequantize_q8_0(block, out),
            GroupFormat::Q4K => k_quants::dequantize_q4_k(block, out),
            GroupFormat::Q6K => k_quants::dequantize_q6_k(block, out),
        }
    }

    /// Offsets (within a block) of the f16 values that must be finite.
    fn scale_offsets(self) -> &'static [usize] {
        match self {
            GroupFormat::Grouped(s) if s.with_min => &[0, 2],
            GroupFormat::Grouped(_) | GroupFormat::Q8_0 => &[0],
            GroupFormat::Q4K => &[0, 2],
            GroupFormat::Q6K => &[208],
        }
    }
}

impl std::fmt::Display for GroupFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A validated view of a packed `rows x k` matrix of a group format (row `r` holds the `k`
/// weights that dot with an activation vector to give output `r`). Any alignment works.
#[derive(Clone, Copy, Debug)]
pub struct GroupWeights<'a> {
    format: GroupFormat,
    data: &'a [u8],
    rows: usize,
    k: usize,
}

impl<'a> GroupWeights<'a> {
    /// Checks `data` as a `rows x k` tensor of `format`: its length, `k` a whole number of
    /// blocks and at most [`crate::MAX_K`], and every f16 scale and minimum finite (O(blocks):
    /// do it once per tensor, at load). Every code byte is valid.
    pub fn new(
        format: GroupFormat,
        data: &'a [u8],
        rows: usize,
        k: usize,
    ) -> Result<GroupWeights<'a>, QuantError> {
        check_k(k)?;
        check_len("packed weights", format.data_len(rows, k)?, data.len())?;
        let bb = format.block_bytes();
        for (b, block) in data.chunks_exact(bb).enumerate() {
            for &o in format.scale_offsets() {
                let v = f16::from_le_bytes([block[o], block[o + 1]]);
                if !v.is_finite() {
                    return Err(QuantError::Malformed {
                        format: format.name(),
                        offset: b * bb + o,
                        reason: format!("the f16 scale or minimum is {v}"),
                    });
                }
            }
        }
        Ok(GroupWeights {
            format,
            data,
            rows,
            k,
        })
    }

    /// The format.
    pub fn format(&self) -> GroupFormat {
        self.format
    }

    /// Rows (outputs).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Weights per row.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The packed bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.data
    }

    /// The packed bytes of row `r` (panics if `r >= rows`, as slice indexing does).
    pub fn row(&self, r: usize) -> &'a [u8] {
        let n = self.data.len() / self.rows.max(1);
        &self.data[r * n..(r + 1) * n]
    }

    /// The `rows x k` f32 values, as `gguf-py` dequantizes them.
    pub fn dequantize(&self) -> Vec<f32> {
        let (bs, bb) = (self.format.block(), self.format.block_bytes());
        let mut out = vec![0f32; self.rows * self.k];
        for (o, block) in out.chunks_exact_mut(bs).zip(self.data.chunks_exact(bb)) {
            self.format.dequantize_block(block, o);
        }
        out
    }
}

/// An owned, quantized `rows x k` matrix of a group format.
#[derive(Clone, Debug, PartialEq)]
pub struct PackedGroup {
    format: GroupFormat,
    bytes: Vec<u8>,
    rows: usize,
    k: usize,
}

impl PackedGroup {
    /// Quantizes row-major `rows x k` f32 weights as ggml's reference quantizer of `format`
    /// does (module docs). Errors: lengths, `k` not a whole number of blocks, non-finite
    /// values, and scales beyond the f16 range (|scale| > 65504: ggml would store infinity).
    pub fn quantize(
        format: GroupFormat,
        w: &[f32],
        rows: usize,
        k: usize,
    ) -> Result<PackedGroup, QuantError> {
        check_k(k)?;
        check_len("weights", elements(rows, k)?, w.len())?;
        check_finite("weights", w)?;
        let mut bytes = vec![0u8; format.data_len(rows, k)?];
        let (bs, bb) = (format.block(), format.block_bytes());
        for (x, out) in w.chunks_exact(bs).zip(bytes.chunks_exact_mut(bb)) {
            format.quantize_block(x, out)?;
        }
        Ok(PackedGroup {
            format,
            bytes,
            rows,
            k,
        })
    }

    /// The format.
    pub fn format(&self) -> GroupFormat {
        self.format
    }

    /// The packed bytes (what a GGUF file holds for the ggml formats).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The view the kernels take.
    pub fn view(&self) -> GroupWeights<'_> {
        GroupWeights {
            format: self.format,
            data: &self.bytes,
            rows: self.rows,
            k: self.k,
        }
    }

    /// The dequantized f32 values.
    pub fn dequantize(&self) -> Vec<f32> {
        self.view().dequantize()
    }
}
