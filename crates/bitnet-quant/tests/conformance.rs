//! Conformance: blocks written by llama.cpp's own Python library (gguf-py 0.19.0) are read and
//! written bit-exactly. I2_S and Q8_K have no installable oracle: their fixtures come from a
//! numpy transcription of bitnet.cpp's `quantize_i2_s` packing loop and of ggml's
//! `quantize_row_q8_K_ref` (different language and code, same published algorithm), which
//! catches implementation slips but not a misreading shared with DOMAIN.md.
//! The fixtures come from `tests/fixtures/generate.py` (run once, committed).

use bitnet_quant::formats::q8_k::{BLOCK_BYTES, BlockQ8K};
use bitnet_quant::{PackedTernary, TernaryFormat, TernaryWeights};

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

/// Our quantizer writes gguf-py's bytes, and our reader dequantizes them to gguf-py's floats.
fn check(format: TernaryFormat, input: &[u8], blocks: &[u8], dequant: &[u8], rows: usize) {
    let x = f32s(input);
    let k = x.len() / rows;
    assert!(
        !x.is_empty() && x.len().is_multiple_of(rows),
        "{format}: fixture size"
    );
    let ours = PackedTernary::quantize(format, &x, rows, k).unwrap();
    assert_eq!(ours.bytes(), blocks, "{format}: quantized bytes");
    let view = TernaryWeights::new(format, blocks, rows, k).unwrap();
    assert_bit_equal(&view.dequantize(), &f32s(dequant), format.name());
}

#[test]
fn tq2_0_matches_gguf_py() {
    check(
        TernaryFormat::Tq2_0,
        include_bytes!("fixtures/tq2_0_input.f32"),
        include_bytes!("fixtures/tq2_0_blocks.bin"),
        include_bytes!("fixtures/tq2_0_dequant.f32"),
        1,
    );
}

#[test]
fn tq1_0_matches_gguf_py() {
    check(
        TernaryFormat::Tq1_0,
        include_bytes!("fixtures/tq1_0_input.f32"),
        include_bytes!("fixtures/tq1_0_blocks.bin"),
        include_bytes!("fixtures/tq1_0_dequant.f32"),
        1,
    );
}

#[test]
fn i2_s_matches_the_documented_layout() {
    check(
        TernaryFormat::I2s,
        include_bytes!("fixtures/i2_s_input.f32"),
        include_bytes!("fixtures/i2_s_blocks.bin"),
        include_bytes!("fixtures/i2_s_dequant.f32"),
        3,
    );
}

#[test]
fn q8_k_matches_ggml_reference() {
    let x = f32s(include_bytes!("fixtures/q8_k_input.f32"));
    let want: &[u8] = include_bytes!("fixtures/q8_k_blocks.bin");
    assert_eq!(
        want.len(),
        x.len() / 256 * BLOCK_BYTES,
        "fixture block count"
    );
    for (i, (chunk, bytes)) in x
        .chunks_exact(256)
        .zip(want.chunks_exact(BLOCK_BYTES))
        .enumerate()
    {
        let block = BlockQ8K::quantize(chunk).unwrap();
        assert_eq!(block.to_bytes().as_slice(), bytes, "block {i}");
        assert_eq!(
            BlockQ8K::from_bytes(bytes).unwrap(),
            block,
            "block {i} read back"
        );
    }
}
