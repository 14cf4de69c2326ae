//! Packed formats: pack/unpack round trips over random codes and scales, the TQ1_0 digit
//! encoding exhaustively, and malformed input rejected with a precise error.

use bitnet_quant::formats::{i2_s, tq1_0, tq2_0};
use bitnet_quant::{
    PackedTernary, QuantError, ScaleGroup, TernaryFormat, TernaryMatrix, TernaryWeights,
};
use half::f16;
use proptest::prelude::*;

fn codes_256() -> impl Strategy<Value = [u8; 256]> {
    proptest::collection::vec(0u8..3, 256).prop_map(|v| v.try_into().unwrap())
}

fn finite_f16() -> impl Strategy<Value = f16> {
    any::<u16>()
        .prop_map(f16::from_bits)
        .prop_filter("finite", |h| h.is_finite())
}

proptest! {
    #[test]
    fn tq2_0_round_trips(codes in codes_256(), d in finite_f16()) {
        let block = tq2_0::encode_block(&codes, d).unwrap();
        tq2_0::validate_block(&block, 0).unwrap();
        let (back, d_back) = tq2_0::decode_block(&block);
        prop_assert_eq!(back, codes);
        prop_assert_eq!(d_back.to_bits(), d.to_bits());
    }

    #[test]
    fn tq1_0_round_trips(codes in codes_256(), d in finite_f16()) {
        let block = tq1_0::encode_block(&codes, d).unwrap();
        tq1_0::validate_block(&block, 0).unwrap();
        let (back, d_back) = tq1_0::decode_block(&block);
        prop_assert_eq!(back, codes);
        prop_assert_eq!(d_back.to_bits(), d.to_bits());
    }

    #[test]
    fn i2_s_round_trips(blocks in 1usize..6, seed in any::<u64>(), scale in 0f32..1e6) {
        let n = blocks * 128;
        let codes: Vec<u8> = (0..n).map(|i| ((seed >> (i % 61)) as usize + i * 7) as u8 % 3).collect();
        let data = i2_s::encode(&codes, scale).unwrap();
        i2_s::validate(&data, n).unwrap();
        let view = TernaryWeights::new(TernaryFormat::I2s, &data, 1, n).unwrap();
        prop_assert_eq!(view.tensor_scale(), Some(scale));
        for (b, block) in data[..n / 4].chunks_exact(32).enumerate() {
            let decoded = i2_s::decode_block(block.try_into().unwrap());
            prop_assert_eq!(&decoded[..], &codes[b * 128..(b + 1) * 128]);
        }
    }

    /// Absmean matrices pack into every format and unpack to the same codes (TQ scales as f16).
    #[test]
    fn ternary_matrices_pack_and_unpack(rows in 0usize..4, blocks in 1usize..4, seed in any::<u32>()) {
        let k = blocks * 256;
        let w: Vec<f32> = (0..rows * k)
            .map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        for (format, group) in [
            (TernaryFormat::Tq2_0, ScaleGroup::Block(256)),
            (TernaryFormat::Tq1_0, ScaleGroup::Row),
            (TernaryFormat::I2s, ScaleGroup::Tensor),
        ] {
            let m = TernaryMatrix::quantize_absmean(&w, rows, k, group).unwrap();
            let packed = PackedTernary::from_ternary(format, &m).unwrap();
            let view = TernaryWeights::new(format, packed.bytes(), rows, k).unwrap();
            for r in 0..rows {
                let (codes, scales) = view.row_codes(r);
                let want: Vec<u8> = m.row(r).iter().map(|&c| (c + 1) as u8).collect();
                prop_assert_eq!(&codes, &want);
                for (b, &s) in scales.iter().enumerate() {
                    let exact = m.scale_at(r, b * format.block());
                    let stored = if format == TernaryFormat::I2s { exact } else { f16::from_f32(exact).to_f32() };
                    prop_assert_eq!(s, stored);
                }
            }
        }
    }
}

#[test]
fn tq1_0_digits_cover_every_number_below_243_once() {
    let mut seen = [false; 256];
    for v in 0u16..243 {
        let t: [u8; 5] = std::array::from_fn(|n| (v / 3u16.pow(4 - n as u32) % 3) as u8);
        let byte = tq1_0::encode_trits(t).unwrap();
        assert!(!seen[byte as usize], "two numbers share byte {byte}");
        seen[byte as usize] = true;
        assert_eq!(tq1_0::trits(byte), t, "v = {v}");
    }
    // The 13 bytes no number encodes to are rejected.
    let mut block = tq1_0::encode_block(&[1; 256], f16::ONE).unwrap();
    let rejected = (0u8..=255).filter(|&b| {
        block[0] = b;
        tq1_0::validate_block(&block, 0).is_err()
    });
    assert_eq!(rejected.count(), 13);
}

fn malformed(err: QuantError) -> (String, usize) {
    match err {
        QuantError::Malformed { format, offset, .. } => (format.to_owned(), offset),
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn malformed_data_is_an_error() {
    let good2 = tq2_0::encode_block(&[1; 256], f16::ONE).unwrap();
    let good1 = tq1_0::encode_block(&[1; 256], f16::ONE).unwrap();
    let two_blocks: Vec<u8> = [good2, good2].concat();

    // Wrong lengths.
    assert!(matches!(
        TernaryWeights::new(TernaryFormat::Tq2_0, &two_blocks[..131], 1, 512),
        Err(QuantError::Length {
            expected: 132,
            got: 131,
            ..
        })
    ));
    assert!(matches!(
        TernaryWeights::new(TernaryFormat::Tq1_0, &good1, 1, 255),
        Err(QuantError::NotMultiple { block: 256, .. })
    ));
    // A 2-bit code of 3 in the second block.
    let mut bad = two_blocks.clone();
    bad[66 + 5] = 0b1100_0000;
    assert_eq!(
        malformed(TernaryWeights::new(TernaryFormat::Tq2_0, &bad, 1, 512).unwrap_err()),
        ("TQ2_0".into(), 71)
    );
    // Non-finite scale.
    let mut bad = good2;
    bad[64..].copy_from_slice(&f16::NAN.to_le_bytes());
    assert_eq!(
        malformed(TernaryWeights::new(TernaryFormat::Tq2_0, &bad, 1, 256).unwrap_err()).1,
        64
    );
    // A TQ1_0 byte no encoder writes (1), and a qh byte with a fifth digit (ceil(1 * 256 / 243) = 2).
    let mut bad = good1;
    bad[7] = 1;
    assert_eq!(
        malformed(TernaryWeights::new(TernaryFormat::Tq1_0, &bad, 1, 256).unwrap_err()).1,
        7
    );
    let mut bad = good1;
    bad[49] = 2;
    assert_eq!(
        malformed(TernaryWeights::new(TernaryFormat::Tq1_0, &bad, 1, 256).unwrap_err()).1,
        49
    );
    // I2_S: the scale missing, a code 3, a negative scale, k not in blocks of 128.
    let data = i2_s::encode(&[1; 256], 0.5).unwrap();
    assert_eq!(
        malformed(TernaryWeights::new(TernaryFormat::I2s, &data[..64], 2, 128).unwrap_err()),
        ("I2_S".into(), 64)
    );
    let mut bad = data.clone();
    bad[3] = 0b0000_0011;
    assert_eq!(
        malformed(TernaryWeights::new(TernaryFormat::I2s, &bad, 2, 128).unwrap_err()).1,
        3
    );
    let mut bad = data.clone();
    bad[64..68].copy_from_slice(&(-1.0f32).to_le_bytes());
    assert_eq!(
        malformed(TernaryWeights::new(TernaryFormat::I2s, &bad, 2, 128).unwrap_err()).1,
        64
    );
    assert!(matches!(
        TernaryWeights::new(TernaryFormat::I2s, &data, 4, 64),
        Err(QuantError::NotMultiple { block: 128, .. })
    ));
    assert!(TernaryWeights::new(TernaryFormat::I2s, &data, 2, 128).is_ok());
}

#[test]
fn quantizers_reject_what_they_cannot_store() {
    let mut x = vec![0.5f32; 256];
    x[3] = f32::NAN;
    assert!(matches!(
        tq2_0::quantize_block(&x),
        Err(QuantError::NonFinite { index: 3, .. })
    ));
    x[3] = 1e6; // beyond the f16 scale's range
    assert!(matches!(
        tq1_0::quantize_block(&x),
        Err(QuantError::Invalid { .. })
    ));
    assert!(matches!(
        PackedTernary::quantize(TernaryFormat::I2s, &[0.0; 100], 1, 100),
        Err(QuantError::NotMultiple { .. })
    ));
    let m = TernaryMatrix::quantize_absmean(&[0.1; 512], 2, 256, ScaleGroup::Row).unwrap();
    assert!(matches!(
        PackedTernary::from_ternary(TernaryFormat::I2s, &m),
        Err(QuantError::Invalid { .. })
    ));
}

#[test]
fn extreme_blocks_quantize_exactly() {
    // All zero: scale 0, every weight 0; all +1 / -1: codes 2 / 0, scale 1.
    for (value, code) in [(0.0f32, 1u8), (1.0, 2), (-1.0, 0)] {
        for format in [TernaryFormat::Tq2_0, TernaryFormat::Tq1_0] {
            let p = PackedTernary::quantize(format, &[value; 256], 1, 256).unwrap();
            let (codes, scales) = p.view().row_codes(0);
            assert!(codes.iter().all(|&c| c == code), "{format} {value}");
            assert_eq!(scales, vec![value.abs()]);
            assert_eq!(p.view().dequantize(), vec![value; 256]);
        }
    }
}

/// The worked examples of docs/FORMATS.md.
#[test]
fn documented_examples_hold() {
    let mut codes = [1u8; 256];
    (codes[0], codes[32], codes[64], codes[96]) = (2, 1, 0, 2);
    assert_eq!(tq2_0::encode_block(&codes, f16::ONE).unwrap()[0], 0x86);
    assert_eq!(tq1_0::encode_trits([2, 0, 1, 0, 0]), Some(181));
    assert_eq!(tq1_0::trits(181), [2, 0, 1, 0, 0]);
}

#[test]
fn i2_s_block_decode_matches_code_by_code() {
    let codes: Vec<u8> = (0..128).map(|i| (i * 5 % 3) as u8).collect();
    let data = i2_s::encode(&codes, 1.0).unwrap();
    let block = i2_s::decode_block(data[..32].try_into().unwrap());
    assert_eq!(block.as_slice(), codes.as_slice());
    // Byte j holds weights j, j + 32, j + 64, j + 96, most significant first.
    let j = 5;
    let expect = (codes[j] << 6) | (codes[j + 32] << 4) | (codes[j + 64] << 2) | codes[j + 96];
    assert_eq!(data[j], expect);
}

#[test]
fn encoders_reject_codes_above_2() {
    let mut codes = [1u8; 256];
    codes[200] = 3;
    assert!(tq2_0::encode_block(&codes, f16::ONE).is_err());
    assert!(tq1_0::encode_block(&codes, f16::ONE).is_err());
    assert!(i2_s::encode(&codes, 1.0).is_err());
    assert!(i2_s::encode(&[1; 129], 1.0).is_err());
    assert_eq!(tq1_0::encode_trits([3, 0, 0, 0, 0]), None);
}

#[test]
fn quantizer_errors_name_the_global_index_and_block() {
    let mut x = vec![0.5f32; 512];
    x[300] = f32::NAN;
    assert!(matches!(
        PackedTernary::quantize(TernaryFormat::Tq2_0, &x, 1, 512),
        Err(QuantError::NonFinite { index: 300, .. })
    ));
    x[300] = 1e6;
    match PackedTernary::quantize(TernaryFormat::Tq1_0, &x, 1, 512) {
        Err(QuantError::Invalid { reason, .. }) => assert!(reason.contains("block 1"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // A NaN I2_S scale is malformed data at the scale's offset.
    let mut data = i2_s::encode(&[1; 128], 1.0).unwrap();
    data[32..36].copy_from_slice(&f32::NAN.to_le_bytes());
    assert_eq!(
        malformed(TernaryWeights::new(TernaryFormat::I2s, &data, 1, 128).unwrap_err()).1,
        32
    );
}

#[test]
fn huge_empty_shapes_are_cheap() {
    // k = 0 with an enormous row count: nothing to read, and nothing loops over the rows.
    let w = TernaryWeights::new(TernaryFormat::Tq2_0, &[], usize::MAX, 0).unwrap();
    assert!(w.dequantize().is_empty());
    let m = TernaryMatrix::quantize_absmean(&[], usize::MAX, 0, ScaleGroup::Tensor).unwrap();
    assert!(m.dequantize().is_empty());
    assert!(TernaryMatrix::quantize_absmean(&[], usize::MAX, 0, ScaleGroup::Row).is_err());
}
