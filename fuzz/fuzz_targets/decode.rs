//! Decodes arbitrary bytes as an LHV1 blob. Any error is fine; a panic, an
//! abort, a hang or an allocation far beyond the input's size is a bug. When
//! a blob decodes, the index must also search and re-encode without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vectord::lhv1;

fuzz_target!(|data: &[u8]| {
    let info = lhv1::inspect(data);
    let Ok(index) = lhv1::decode(data) else {
        return;
    };
    // A blob that decodes also inspects.
    let info = info.expect("decode succeeded but inspect failed");
    assert_eq!(info.count as usize, index.len());
    let dim = index.dim() as usize;
    let query: Vec<f32> = (0..dim).map(|i| 1.0 + (i % 7) as f32 * 0.25).collect();
    let _ = index.search(&query, 5, Some(16));
    let again = lhv1::encode(&index).expect("a decoded index re-encodes");
    // What decodes re-encodes to something that decodes to the same size.
    let back = lhv1::decode(&again).expect("re-encoded blob does not decode");
    assert_eq!(back.len(), index.len());
});
