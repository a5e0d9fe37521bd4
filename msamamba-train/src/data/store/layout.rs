//! The zarr v2 metadata of a GPN-MSA-style store: what the importer writes and what the reader
//! accepts (the layout itself is described in `store.rs`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use zarrs::array::ArrayMetadataV2;

/// Alignment columns per chunk, as in GPN-MSA's `merge_msa` rule (`chunks=(512, n_species)`).
pub const CHUNK_ROWS: u64 = 512;

/// Root-group attribute listing the species in column order (our addition; GPN-MSA keeps the
/// order in a separate text file, so its stores lack it).
pub const SPECIES_ATTR: &str = "species";

/// The byte unwritten chunks read as in stores we write: a gap.
pub const FILL_BYTE: u8 = b'-';

/// `.zarray` of one chromosome array as zarr-python 2 writes it for GPN-MSA (`|S1`, Blosc lz4
/// level 5 with byte shuffle, C order), except that the fill value is `-` rather than the empty
/// byte string, so that all-gap chunks can be left unwritten and still read as gaps.
pub fn array_json(len: u64, width: usize) -> Value {
    json!({
        "zarr_format": 2,
        "shape": [len, width],
        "chunks": [CHUNK_ROWS, width],
        "dtype": "|S1",
        "fill_value": STANDARD.encode([FILL_BYTE]),
        "order": "C",
        "filters": null,
        "compressor": {"id": "blosc", "cname": "lz4", "clevel": 5, "shuffle": 1, "blocksize": 0},
    })
}

/// Checks a chromosome's `.zarray` and returns (length, width, metadata zarrs can decode).
///
/// zarrs does not know NumPy's `|S1`, whose bytes are those of `|u1`, so the dtype is read as
/// `|u1` and the base64 fill value becomes its byte.
pub fn parse_array_json(text: &[u8]) -> Result<(u64, usize, ArrayMetadataV2), String> {
    let mut value: Value = serde_json::from_slice(text).map_err(|err| err.to_string())?;
    let object = value.as_object_mut().ok_or("not a JSON object")?;
    if object.get("zarr_format") != Some(&json!(2)) {
        return Err("not zarr format 2".into());
    }
    let fill = match (object.get("dtype").and_then(Value::as_str), object.get("fill_value")) {
        (Some("|S1"), Some(Value::String(text))) => {
            let bytes = STANDARD
                .decode(text)
                .map_err(|err| format!("fill_value `{text}`: {err}"))?;
            // zarr-python encodes NumPy's b'' (an all-zero S1) as the empty string.
            json!(bytes.first().copied().unwrap_or(0))
        }
        (Some("|S1" | "|u1"), None | Some(Value::Null)) => json!(0),
        (Some("|u1"), Some(fill)) => fill.clone(),
        (Some("|S1"), Some(fill)) => {
            return Err(format!("fill_value {fill} does not fit dtype |S1"));
        }
        (dtype, _) => {
            return Err(format!(
                "dtype {} is not |S1 or |u1 (one ASCII byte per base)",
                dtype.map_or_else(|| "missing".to_string(), str::to_string)
            ));
        }
    };
    object.insert("dtype".into(), json!("|u1"));
    object.insert("fill_value".into(), fill);
    let metadata: ArrayMetadataV2 = serde_json::from_value(value).map_err(|err| err.to_string())?;
    let [len, width] = metadata.shape[..] else {
        return Err(format!(
            "shape {:?} is not [chromosome length, species]",
            metadata.shape
        ));
    };
    let width = usize::try_from(width).map_err(|err| err.to_string())?;
    Ok((len, width, metadata))
}

/// Parses the root `.zattrs` species list, if it has one.
pub fn parse_species(text: &[u8]) -> Result<Option<Vec<String>>, String> {
    let value: Value = serde_json::from_slice(text).map_err(|err| err.to_string())?;
    let Some(list) = value.get(SPECIES_ATTR) else {
        return Ok(None);
    };
    let names = list.as_array().ok_or("`species` is not a list")?;
    names
        .iter()
        .map(|name| {
            name.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("species name {name} is not a string"))
        })
        .collect::<Result<_, _>>()
        .map(Some)
}
