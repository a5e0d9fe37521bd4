//! Known labels of variants (`--labels`), read from each VCF record as it streams by, so the
//! scores can be judged by AUROC and AUPRC.

use std::str::FromStr;

use noodles_vcf::variant::RecordBuf;
use noodles_vcf::variant::record_buf::info::field::Value;

/// Where a record's label is: label 1 means damaging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelSpec {
    /// INFO `KEY=1` or `KEY=0` (`true`/`false` too).
    Info(String),
    /// 1 when one of the record's IDs starts with the prefix.
    IdPrefix(String),
}

impl FromStr for LabelSpec {
    type Err = String;

    /// Parses `info:KEY` or `id:PREFIX`.
    fn from_str(spec: &str) -> Result<Self, String> {
        match spec.split_once(':') {
            Some(("info", key)) if !key.is_empty() => Ok(Self::Info(key.to_string())),
            Some(("id", prefix)) => Ok(Self::IdPrefix(prefix.to_string())),
            _ => Err(format!("--labels {spec}: expected info:KEY or id:PREFIX")),
        }
    }
}

impl LabelSpec {
    /// The label of `record`; an error says what is missing or wrong.
    pub fn label(&self, record: &RecordBuf) -> Result<bool, String> {
        match self {
            Self::IdPrefix(prefix) => Ok(record.ids().as_ref().iter().any(|id| id.starts_with(prefix.as_str()))),
            Self::Info(key) => match record.info().get(key.as_str()) {
                Some(Some(Value::Integer(1))) => Ok(true),
                Some(Some(Value::Integer(0))) => Ok(false),
                Some(Some(Value::String(text))) if text == "1" || text == "true" => Ok(true),
                Some(Some(Value::String(text))) if text == "0" || text == "false" => Ok(false),
                Some(Some(Value::Integer(n))) => Err(format!("INFO {key}={n} is not 0/1")),
                Some(Some(Value::String(text))) => Err(format!("INFO {key}={text} is not 0/1")),
                Some(Some(other)) => Err(format!("INFO {key} is {other:?}, not 0/1")),
                _ => Err(format!("no INFO {key}= for --labels")),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use noodles_vcf as vcf;

    fn record(info: &str, id: &str) -> RecordBuf {
        let text = format!(
            "##fileformat=VCFv4.2\n##INFO=<ID=N,Number=1,Type=Integer,Description=\"n\">\n\
             #CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\nchr1\t5\t{id}\tA\tG\t.\t.\t{info}\n"
        );
        let mut reader = vcf::io::Reader::new(text.as_bytes());
        let header = reader.read_header().unwrap();
        let mut record = RecordBuf::default();
        reader.read_record_buf(&header, &mut record).unwrap();
        record
    }

    #[test]
    fn labels_come_from_typed_or_untyped_info_and_from_id_prefixes() {
        let info: LabelSpec = "info:N".parse().unwrap();
        assert_eq!(info.label(&record("N=1", ".")), Ok(true));
        assert_eq!(info.label(&record("N=0", ".")), Ok(false));
        let untyped: LabelSpec = "info:U".parse().unwrap();
        assert_eq!(untyped.label(&record("U=true", ".")), Ok(true));
        assert!(untyped.label(&record("U=2", ".")).unwrap_err().contains("is not 0/1"));
        assert!(untyped.label(&record("N=1", ".")).unwrap_err().contains("no INFO U="));
        let id: LabelSpec = "id:path".parse().unwrap();
        assert_eq!(id.label(&record(".", "rs1;path_7")), Ok(true));
        assert_eq!(id.label(&record(".", "rs1")), Ok(false));
        assert!(
            "clinvar"
                .parse::<LabelSpec>()
                .unwrap_err()
                .contains("expected info:KEY")
        );
    }
}
