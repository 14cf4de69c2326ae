//! Conformance of the group formats with llama.cpp's own Python library (gguf-py 0.19.0) and
//! with ggml's C reference quantizers: our quantizers write gguf-py's bytes for Q4_0, Q4_1 and
//! Q8_0 and ggml C's bytes for Q4_K, Q6_K and Q8_K (gguf-py has no K-quant quantizer), and our
//! readers dequantize gguf-py's bytes to its floats bit for bit for all five ggml weight formats
//! (random Q4_K and Q6_K blocks). Fixtures: `tests/fixtures/generate.py` and
//! `tests/fixtures/ggml_k_quants.sh` (each run once, output committed).

use bitnet_quant::{GroupFormat, GroupWeights, PackedGroup};

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn assert_bit_equal(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.to_bits(), w.to_bits(), "{what}: element {i}: {g} vs {w}");
    }
}

/// Our reader dequantizes gguf-py's bytes to gguf-py's floats (one row).
fn check_read(format: GroupFormat, blocks: &[u8], dequant: &[u8]) {
    let want = f32s(dequant);
    let view = GroupWeights::new(format, blocks, 1, want.len()).unwrap();
    assert_bit_equal(&view.dequantize(), &want, format.name());
}

/// Our quantizer writes gguf-py's bytes, and the reader matches its dequantization.
fn check_write(format: GroupFormat, input: &[u8], blocks: &[u8], dequant: &[u8]) {
    let x = f32s(input);
    let ours = PackedGroup::quantize(format, &x, 1, x.len()).unwrap();
    assert_eq!(ours.bytes(), blocks, "{format}: quantized bytes");
    check_read(format, blocks, dequant);
}

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!("fixtures/", $name))
    };
}

#[test]
fn q4_0_matches_gguf_py() {
    check_write(
        GroupFormat::Q4_0,
        fixture!("q4_0_input.f32"),
        fixture!("q4_0_blocks.bin"),
        fixture!("q4_0_dequant.f32"),
    );
}

#[test]
fn q4_1_matches_gguf_py() {
    check_write(
        GroupFormat::Q4_1,
        fixture!("q4_1_input.f32"),
        fixture!("q4_1_blocks.bin"),
        fixture!("q4_1_dequant.f32"),
    );
}

#[test]
fn q8_0_matches_gguf_py() {
    check_write(
        GroupFormat::Q8_0,
        fixture!("q8_0_input.f32"),
        fixture!("q8_0_blocks.bin"),
        fixture!("q8_0_dequant.f32"),
    );
}

#[test]
fn q4_k_reads_as_gguf_py() {
    check_read(
        GroupFormat::Q4K,
        fixture!("q4_k_blocks.bin"),
        fixture!("q4_k_dequant.f32"),
    );
}

#[test]
fn q6_k_reads_as_gguf_py() {
    check_read(
        GroupFormat::Q6K,
        fixture!("q6_k_blocks.bin"),
        fixture!("q6_k_dequant.f32"),
    );
}

/// Our K-quant quantizers write the bytes of ggml's own C reference quantizers
/// (`quantize_row_q4_K_ref`, `quantize_row_q6_K_ref`, built from a ggml checkout by
/// `tests/fixtures/ggml_k_quants.sh`) for 16 blocks of gaussian, heavy-tailed, ternary, tied,
/// zero, spiked, tiny, one-signed, sparse and mixed-magnitude values, block by block.
fn check_ggml_c(format: GroupFormat, want: &[u8]) {
    let x = f32s(fixture!("k_quants_input.f32"));
    let ours = PackedGroup::quantize(format, &x, 1, x.len()).unwrap();
    assert_eq!(ours.bytes().len(), want.len(), "{format}: length");
    let bb = format.block_bytes();
    for (b, (got, want)) in ours
        .bytes()
        .chunks_exact(bb)
        .zip(want.chunks_exact(bb))
        .enumerate()
    {
        assert_eq!(got, want, "{format}: block {b}");
    }
}

#[test]
fn q4_k_quantizes_as_ggml_c() {
    check_ggml_c(GroupFormat::Q4K, fixture!("q4_k_ref_blocks.bin"));
}

#[test]
fn q6_k_quantizes_as_ggml_c() {
    check_ggml_c(GroupFormat::Q6K, fixture!("q6_k_ref_blocks.bin"));
}

/// Q8_K activations: ggml's `quantize_row_q8_K_ref` bytes (same fixture input).
#[test]
fn q8_k_quantizes_as_ggml_c() {
    use bitnet_quant::formats::q8_k::{BLOCK_BYTES, BlockQ8K};
    let x = f32s(fixture!("k_quants_input.f32"));
    let want: &[u8] = fixture!("q8_k_ref_blocks.bin");
    assert_eq!(want.len(), x.len() / 256 * BLOCK_BYTES);
    for (b, (chunk, want)) in x
        .chunks_exact(256)
        .zip(want.chunks_exact(BLOCK_BYTES))
        .enumerate()
    {
        let block = BlockQ8K::quantize(chunk).unwrap();
        assert_eq!(block.to_bytes().as_slice(), want, "block {b}");
    }
}

#[test]
fn non_finite_scales_are_malformed() {
    for format in [GroupFormat::Q4_0, GroupFormat::Q4K, GroupFormat::Q6K] {
        let mut bytes = PackedGroup::quantize(format, &vec![0.5; 256], 1, 256)
            .unwrap()
            .bytes()
            .to_vec();
        let o = if format == GroupFormat::Q6K { 208 } else { 0 };
        bytes[o..o + 2].copy_from_slice(&half::f16::INFINITY.to_le_bytes());
        let err = GroupWeights::new(format, &bytes, 1, 256).unwrap_err();
        assert!(err.to_string().contains("malformed"), "{format}: {err}");
    }
}
