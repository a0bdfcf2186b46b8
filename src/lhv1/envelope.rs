//! The JSON envelope (docs/lhv1.md, section 2).
//!
//! Parsing keeps the metadata object as a slice of the blob and walks it one
//! member at a time later, so a huge envelope costs no more memory than the
//! metadata the index keeps (a parsed map of it would cost far more than its
//! text on small members).

use std::fmt;

use serde::de::{self, Deserializer as _, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{corrupt, Snapshot, HEADER_LEN, VERSION};
use crate::error::{Error, Result};
use crate::hnsw::Metric;
use crate::hnsw::Quantization;
use crate::index::IndexParams;

#[derive(Serialize, Deserialize)]
struct ParamsJson {
    name: String,
    dim: u32,
    metric: String,
    m: u32,
    ef_construction: u32,
    ef_search: u32,
    /// Absent in version 1 (= "none"); written only by version 2, for int8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    quantization: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct GraphJson {
    pub len: u64,
    pub crc32c: u32,
}

#[derive(Deserialize)]
struct VersionJson {
    version: u64,
}

#[derive(Deserialize)]
struct EnvelopeJson<'a> {
    params: ParamsJson,
    count: u64,
    #[serde(default, borrow, deserialize_with = "present")]
    metadata: Option<&'a RawValue>,
    graph: GraphJson,
}

/// A member that is there, whatever its value (so `null` is not taken for a
/// missing member and rejected later as not an object).
fn present<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// A parsed envelope; `metadata` borrows from the blob.
pub(super) struct Envelope<'a> {
    pub version: u64,
    pub params: IndexParams,
    pub count: u64,
    pub metadata: Option<&'a RawValue>,
    pub graph: GraphJson,
}

/// The JSON envelope of a snapshot.
pub(super) fn write(s: &Snapshot) -> String {
    let params = ParamsJson {
        name: s.params.name.clone(),
        dim: s.params.dim,
        metric: s.params.metric.as_str().to_string(),
        m: s.params.m,
        ef_construction: s.params.ef_construction,
        ef_search: s.params.ef_search,
        quantization: (s.params.quantization != Quantization::None)
            .then(|| s.params.quantization.as_str().to_string()),
    };
    let mut env = String::with_capacity(
        256 + s
            .metadata
            .iter()
            .map(|(k, v)| k.len() + v.len() + 8)
            .sum::<usize>(),
    );
    env.push_str("{\"version\":");
    env.push_str(&version_for(s.params.quantization).to_string());
    env.push_str(",\"params\":");
    env.push_str(&serde_json::to_string(&params).expect("params serialise"));
    env.push_str(&format!(",\"count\":{},\"metadata\":{{", s.count));
    for (i, (id, md)) in s.metadata.iter().enumerate() {
        if i > 0 {
            env.push(',');
        }
        env.push_str(&serde_json::to_string(&**id).expect("strings serialise"));
        env.push(':');
        // Metadata was checked to be one JSON value when it was added.
        env.push_str(md);
    }
    env.push_str(&format!(
        "}},\"graph\":{{\"len\":{},\"crc32c\":{}}}}}",
        s.graph.len(),
        crc32c::crc32c(&s.graph)
    ));
    env
}

/// The envelope version a snapshot is written with: an unquantized index
/// stays version 1 (readable by every reader), a quantized one is version 2,
/// so a version-1 reader, which would ignore the quantization and answer
/// differently, refuses it as Unsupported.
pub(super) fn version_for(q: Quantization) -> u64 {
    match q {
        Quantization::None => 1,
        Quantization::Int8 => 2,
    }
}

/// Parses the envelope: the version first (a newer one is `Unsupported`
/// whatever else changed), then the rest, with the parameters validated.
pub(super) fn parse(env: &[u8]) -> Result<Envelope<'_>> {
    let text = std::str::from_utf8(env).map_err(|e| {
        corrupt(format!(
            "offset {}: envelope is not UTF-8",
            HEADER_LEN + e.valid_up_to()
        ))
    })?;
    let v: VersionJson = serde_json::from_str(text)
        .map_err(|e| corrupt(format!("offset {HEADER_LEN}: envelope: {e}")))?;
    if v.version > VERSION {
        return Err(Error::Unsupported(format!(
            "LHV1 envelope version {} is newer than this reader's version {VERSION}",
            v.version
        )));
    }
    if v.version == 0 {
        return Err(corrupt("envelope version 0 does not exist"));
    }
    let e: EnvelopeJson<'_> = serde_json::from_str(text)
        .map_err(|e| corrupt(format!("offset {HEADER_LEN}: envelope: {e}")))?;
    Ok(Envelope {
        version: v.version,
        params: params_of(&e.params, v.version)?,
        count: e.count,
        metadata: e.metadata,
        graph: e.graph,
    })
}

fn params_of(p: &ParamsJson, version: u64) -> Result<IndexParams> {
    let metric = Metric::parse(&p.metric)
        .ok_or_else(|| corrupt(format!("envelope: unknown metric {:?}", p.metric)))?;
    let quantization = match p.quantization.as_deref() {
        None if version == 1 => Quantization::None,
        None => {
            return Err(corrupt(format!(
                "envelope: version {version} parameters have no quantization"
            )))
        }
        Some(q) => {
            let q = Quantization::parse(q).ok_or_else(|| {
                Error::Unsupported(format!(
                    "envelope: quantization {q:?} is not one this reader knows (none, int8)"
                ))
            })?;
            if version_for(q) != version {
                return Err(corrupt(format!(
                    "envelope: quantization {:?} in an envelope of version {version} (it is written as version {})",
                    q.as_str(),
                    version_for(q)
                )));
            }
            q
        }
    };
    let params = IndexParams {
        name: p.name.clone(),
        dim: p.dim,
        metric,
        m: p.m,
        ef_construction: p.ef_construction,
        ef_search: p.ef_search,
        quantization,
    };
    params
        .validate()
        .map_err(|e| corrupt(format!("envelope parameters: {e}")))?;
    Ok(params)
}

/// Calls `f` with each member of the metadata object in order (id, value
/// text as written). The object must be an object; `f`'s error stops the
/// walk and is returned as it is. Allocates one key at a time.
pub(super) fn for_each_metadata<'a>(
    md: Option<&'a RawValue>,
    f: impl FnMut(&str, &'a str) -> Result<()>,
) -> Result<()> {
    let Some(md) = md else {
        return Ok(());
    };
    struct Walk<'a, F> {
        f: F,
        failed: &'a mut Option<Error>,
    }
    impl<'de, F: FnMut(&str, &'de str) -> Result<()>> Visitor<'de> for Walk<'_, F> {
        type Value = ();
        fn expecting(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
            out.write_str("an object of metadata by id")
        }
        fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> std::result::Result<(), A::Error> {
            while let Some(id) = map.next_key::<String>()? {
                let value: &'de RawValue = map.next_value()?;
                if let Err(e) = (self.f)(&id, value.get()) {
                    *self.failed = Some(e);
                    return Err(de::Error::custom("stopped"));
                }
            }
            Ok(())
        }
    }
    let mut failed = None;
    let mut de = serde_json::Deserializer::from_str(md.get());
    let walked = de.deserialize_map(Walk {
        f,
        failed: &mut failed,
    });
    if let Some(e) = failed {
        return Err(e);
    }
    walked.map_err(|e| corrupt(format!("offset {HEADER_LEN}: envelope metadata: {e}")))
}
