//! Structural and memory-safety checks of the C ABI that the C tests cannot
//! make: every `extern "C" fn` in the crate runs inside the unwind boundary,
//! and float arrays at any byte offset are read and written without
//! creating misaligned references (debug builds, as plain `cargo test`
//! makes them, abort on a misaligned `slice::from_raw_parts`).

use std::collections::BTreeSet;
use std::ffi::{c_char, CStr};
use std::path::{Path, PathBuf};
use std::ptr;

use vectord::ffi::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `src` with comments, string and char literals blanked out (same length,
/// so offsets still line up), so that brackets inside them do not count.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to.min(b.len())] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < b.len() {
        let raw = b[i] == b'r'
            && (i == 0 || !ident(b[i - 1]))
            && matches!(b.get(i + 1), Some(b'"' | b'#'));
        if b[i..].starts_with(b"//") {
            let end = src[i..].find('\n').map_or(b.len(), |e| i + e);
            blank(&mut out, i, end);
            i = end;
        } else if b[i..].starts_with(b"/*") {
            let end = src[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
            blank(&mut out, i, end);
            i = end;
        } else if raw {
            let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
            let open = i + 1 + hashes;
            if b.get(open) != Some(&b'"') {
                i += 1;
                continue;
            }
            let close = format!("\"{}", "#".repeat(hashes));
            let end = src[open + 1..]
                .find(&close)
                .map_or(b.len(), |e| open + 1 + e);
            blank(&mut out, open + 1, end);
            i = end + close.len();
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            blank(&mut out, i + 1, j);
            i = j + 1;
        } else if b[i] == b'\'' && b.get(i + 1) == Some(&b'\\') {
            // An escaped char literal: '\'' '\\' '\n' '\u{..}'.
            let end = src[i + 3..].find('\'').map_or(b.len(), |e| i + 3 + e);
            blank(&mut out, i + 1, end);
            i = end + 1;
        } else if b[i] == b'\'' && b.get(i + 2) == Some(&b'\'') {
            blank(&mut out, i + 1, i + 2);
            i += 3;
        } else {
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Index just past the bracket that closes the one at `open`.
fn matching(code: &[u8], open: usize) -> usize {
    let (o, c) = (code[open], if code[open] == b'(' { b')' } else { b'}' });
    let mut depth = 0usize;
    for (i, &ch) in code.iter().enumerate().skip(open) {
        if ch == o {
            depth += 1;
        } else if ch == c {
            depth -= 1;
            if depth == 0 {
                return i + 1;
            }
        }
    }
    panic!("unbalanced brackets");
}

/// The named `extern "C" fn`s of one source file, and for each whose body is
/// not exactly one `boundary(..)` or `infallible(..)` call, why.
fn check_source(file: &str, src: &str) -> (Vec<String>, Vec<String>) {
    // The ABI string is blanked with the other literals: find declarations
    // in the source and read the code at the same offsets, where a comment
    // or a string is blank.
    let code = code_only(src);
    let bytes = code.as_bytes();
    let decl = "extern \"C\" fn ";
    let mut names = Vec::new();
    let mut bad = Vec::new();
    for (at, _) in src.match_indices(decl) {
        if !code[at..].starts_with("extern") {
            continue;
        }
        let name: String = code[at + decl.len()..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            continue; // a function pointer type
        }
        let params = at + code[at..].find('(').unwrap();
        let sig_end = matching(bytes, params);
        let body = sig_end + code[sig_end..].find('{').unwrap();
        let end = matching(bytes, body);
        let inner = &code[body + 1..end - 1];
        let start = body + 1 + (inner.len() - inner.trim_start().len());
        let place = format!("{file}: {name}");
        match ["boundary(", "infallible("]
            .iter()
            .find(|p| code[start..].starts_with(**p))
        {
            None => bad.push(format!(
                "{place}: the body does not start with boundary(..) or infallible(..)"
            )),
            Some(p) => {
                let after = code[matching(bytes, start + p.len() - 1)..end - 1].trim();
                if !after.is_empty() {
                    bad.push(format!("{place}: code after the boundary call: {after:?}"));
                }
            }
        }
        names.push(name);
    }
    (names, bad)
}

/// The functions the committed header declares.
fn header_functions() -> BTreeSet<String> {
    let header = std::fs::read_to_string(root().join("include/vectord.h")).unwrap();
    let code = code_only(&header);
    let mut names = BTreeSet::new();
    for (at, _) in code.match_indices("vectord_") {
        let name: String = code[at..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if code[at + name.len()..].starts_with('(') {
            names.insert(name);
        }
    }
    names
}

#[test]
fn every_extern_fn_runs_inside_the_boundary() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let mut names = BTreeSet::new();
    let mut bad = Vec::new();
    for f in files {
        let label = f.strip_prefix(root()).unwrap().display().to_string();
        let (n, b) = check_source(&label, &std::fs::read_to_string(&f).unwrap());
        names.extend(n);
        bad.extend(b);
    }
    assert!(
        bad.is_empty(),
        "entry points outside the boundary:\n{}",
        bad.join("\n")
    );
    let header = header_functions();
    assert!(header.len() > 30, "found only {header:?} in the header");
    let missing: Vec<_> = header.difference(&names).collect();
    assert!(
        missing.is_empty(),
        "header functions the scan of src/ did not find: {missing:?}"
    );
}

#[test]
fn the_boundary_scan_flags_what_it_should() {
    let src = r##"
pub extern "C" fn ok_a() -> u32 { infallible(0, || { let s = "}"; s.len() as u32 }) }
#[no_mangle]
pub unsafe extern "C" fn ok_b(err: *mut *mut E) -> S {
    boundary(err, || {
        let _c = '}';
        let _r = r#"") {"#;
        Ok(())
    })
}
// pub extern "C" fn in_a_comment() -> u32 { 1 }
struct L { cb: extern "C" fn(level: u32) }
pub extern "C" fn bare(x: Option<extern "C" fn(u32)>) -> u32 { 7 }
pub extern "C" fn after() -> u32 { infallible(0, || 1); 2 }
pub extern "C" fn late() -> u32 { let x = 1; infallible(0, || x) }
"##;
    let (names, bad) = check_source("x.rs", src);
    assert_eq!(names, ["ok_a", "ok_b", "bare", "after", "late"]);
    assert_eq!(bad.len(), 3, "{bad:#?}");
    assert!(bad[0].starts_with("x.rs: bare: the body does not start"));
    assert!(bad[1].starts_with("x.rs: after: code after the boundary call"));
    assert!(bad[2].starts_with("x.rs: late: the body does not start"));
}

const DIM: usize = 8;
const N: usize = 64;

fn check(st: vectord_status, err: *mut vectord_error) {
    if st != vectord_status::Ok {
        let msg = unsafe { CStr::from_ptr(vectord_error_message(err)) };
        panic!("{st:?}: {}", msg.to_string_lossy());
    }
}

/// A copy of `v` starting one byte past an aligned address, as C passes
/// floats out of a packed record.
struct Odd(Vec<u64>, usize);

impl Odd {
    fn new(v: &[f32]) -> Odd {
        let bytes = std::mem::size_of_val(v);
        let mut buf = vec![0u64; bytes / 8 + 2];
        unsafe {
            ptr::copy_nonoverlapping(
                v.as_ptr().cast::<u8>(),
                buf.as_mut_ptr().cast::<u8>().add(1),
                bytes,
            )
        };
        Odd(buf, v.len())
    }
    fn row(&self, i: usize) -> *const f32 {
        assert!(i * DIM <= self.1);
        unsafe { self.0.as_ptr().cast::<u8>().add(1 + i * DIM * 4).cast() }
    }
}

unsafe fn hits(h: *const vectord_hits) -> Vec<(String, u32)> {
    (0..vectord_hits_len(h))
        .map(|i| {
            let hit = &*vectord_hits_get(h, i);
            (
                CStr::from_ptr(hit.id).to_string_lossy().into_owned(),
                hit.distance.to_bits(),
            )
        })
        .collect()
}

#[test]
fn misaligned_floats_give_the_aligned_results() {
    let mut err: *mut vectord_error = ptr::null_mut();
    let vecs: Vec<f32> = (0..N * DIM)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    let odd = Odd::new(&vecs);
    let ids: Vec<String> = (0..N).map(|i| format!("v{i}\0")).collect();
    let id_ptrs: Vec<*const c_char> = ids.iter().map(|s| s.as_ptr().cast()).collect();
    let params = vectord_index_params {
        name: c"odd".as_ptr(),
        dim: DIM as u32,
        metric: VECTORD_METRIC_L2,
        m: 0,
        ef_construction: 0,
        ef_search: 0,
        quantization: 0,
    };
    unsafe {
        let mut a = ptr::null_mut();
        let mut b = ptr::null_mut();
        check(vectord_index_new(&params, &mut a, &mut err), err);
        check(vectord_index_new(&params, &mut b, &mut err), err);
        let st = vectord_index_add(a, N, id_ptrs.as_ptr(), vecs.as_ptr(), ptr::null(), &mut err);
        check(st, err);
        let st = vectord_index_add(b, N, id_ptrs.as_ptr(), odd.row(0), ptr::null(), &mut err);
        check(st, err);

        // get into a misaligned buffer: the stored vector, bytewise.
        let mut out = vec![0u64; DIM / 2 + 1];
        let out_ptr = out.as_mut_ptr().cast::<u8>().add(1);
        for i in [0, 13, N - 1] {
            let st = vectord_index_get(b, id_ptrs[i], out_ptr.cast(), ptr::null_mut(), &mut err);
            check(st, err);
            let got = std::slice::from_raw_parts(out_ptr, DIM * 4);
            let want = std::slice::from_raw_parts(vecs[i * DIM..].as_ptr().cast::<u8>(), DIM * 4);
            assert_eq!(got, want, "item {i}");
        }

        for q in [0, 5, 40] {
            let (mut ha, mut hb, mut hc) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
            check(
                vectord_index_search(a, vecs[q * DIM..].as_ptr(), 5, &mut ha, &mut err),
                err,
            );
            check(
                vectord_index_search(a, odd.row(q), 5, &mut hb, &mut err),
                err,
            );
            check(
                vectord_index_search_ef(a, odd.row(q), 5, 32, &mut hc, &mut err),
                err,
            );
            assert_eq!(hits(ha).len(), 5);
            assert_eq!(hits(ha), hits(hb), "query {q}");
            assert_eq!(hits(hb)[0].0, format!("v{q}\0").trim_end_matches('\0'));
            assert_eq!(hits(hc).len(), 5);
            for h in [ha, hb, hc] {
                vectord_hits_free(h);
            }
        }

        let mut out_a = [ptr::null_mut(); 4];
        let mut out_b = [ptr::null_mut(); 4];
        let st = vectord_index_search_batch(
            a,
            4,
            vecs[8 * DIM..].as_ptr(),
            3,
            out_a.as_mut_ptr(),
            &mut err,
        );
        check(st, err);
        let st = vectord_index_search_batch(a, 4, odd.row(8), 3, out_b.as_mut_ptr(), &mut err);
        check(st, err);
        for (x, y) in out_a.into_iter().zip(out_b) {
            assert_eq!(hits(x), hits(y));
            assert_eq!(hits(x).len(), 3);
            vectord_hits_free(x);
            vectord_hits_free(y);
        }
        vectord_index_free(a);
        vectord_index_free(b);
    }
}
