//! Variant tables besides VCF, as GPN and pandas users keep them: Parquet, CSV or TSV (plain or
//! gzip) with columns chrom, pos (1-based), ref and alt, one ALT per row, any other columns kept.
//! Read a batch of rows at a time with the arrow crates (Parquet by row group, text by lines),
//! and written back, each batch as it is scored, with two columns added: `score` and `reason`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Float32Array, Int64Array, RecordBatch, RecordBatchReader, StringArray};
use arrow_cast::cast;
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::properties::WriterProperties;
use thiserror::Error;

use crate::data::input;

/// Rows read and written per batch: a batch's memory, whatever the table's size.
pub const BATCH_ROWS: usize = 8192;

/// The columns `score` adds.
pub const SCORE_COLUMNS: [&str; 2] = ["score", "reason"];

/// A table that cannot be read or written.
#[derive(Debug, Error)]
#[error("{}{}: {reason}", path.display(), row.map(|r| format!(": row {r}")).unwrap_or_default())]
pub struct TableError {
    /// The file.
    pub path: PathBuf,
    /// 1-based data row, where one is at fault.
    pub row: Option<u64>,
    /// What is wrong.
    pub reason: String,
}

impl TableError {
    fn new(path: &Path, reason: impl ToString) -> Self {
        TableError {
            path: path.to_path_buf(),
            row: None,
            reason: reason.to_string(),
        }
    }
}

/// A table's format, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    /// `.parquet`, `.pq`.
    Parquet,
    /// `.csv`, `.csv.gz`.
    Csv,
    /// `.tsv`, `.txt`, `.tab` (and `.gz` of each).
    Tsv,
}

impl TableFormat {
    /// The format `path`'s name says; `None` for anything else (a VCF, say).
    pub fn of(path: &Path) -> Option<TableFormat> {
        let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
        let name = name.strip_suffix(".gz").unwrap_or(&name);
        let extension = name.rsplit_once('.')?.1;
        match extension {
            "parquet" | "pq" => Some(TableFormat::Parquet),
            "csv" => Some(TableFormat::Csv),
            "tsv" | "txt" | "tab" => Some(TableFormat::Tsv),
            _ => None,
        }
    }

    fn delimiter(self) -> u8 {
        if self == TableFormat::Csv { b',' } else { b'\t' }
    }
}

/// One row's variant: the four columns, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableVariant {
    /// Chromosome.
    pub chrom: String,
    /// 1-based position.
    pub pos: u64,
    /// Reference allele.
    pub reference: String,
    /// Alternative allele.
    pub alt: String,
}

/// A batch of rows: the rows as read, and their variants.
pub struct TableBatch {
    /// Every column of the input.
    pub rows: RecordBatch,
    /// One per row.
    pub variants: Vec<TableVariant>,
}

/// The positions of the four columns in a schema, matched by name without regard to case:
/// chrom (or chr, chromosome, #chrom), pos (or position), ref, alt.
fn variant_columns(schema: &Schema) -> Result<[usize; 4], String> {
    let names: [&[&str]; 4] = [
        &["chrom", "chr", "chromosome", "#chrom"],
        &["pos", "position"],
        &["ref"],
        &["alt"],
    ];
    let mut found = [0; 4];
    for (slot, accepted) in found.iter_mut().zip(names) {
        *slot = schema
            .fields()
            .iter()
            .position(|f| accepted.contains(&f.name().to_ascii_lowercase().as_str()))
            .ok_or_else(|| {
                format!(
                    "no `{}` column (it has {}); a variant table needs chrom, pos, ref and alt",
                    accepted[0],
                    schema
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
    }
    if let Some(taken) = schema
        .fields()
        .iter()
        .find(|f| SCORE_COLUMNS.contains(&f.name().as_str()))
    {
        return Err(format!(
            "it already has a `{}` column, which the output adds",
            taken.name()
        ));
    }
    Ok(found)
}

/// Streams a variant table a batch at a time.
pub struct VariantTableReader {
    path: PathBuf,
    columns: [usize; 4],
    batches: Box<dyn RecordBatchReader>,
    rows: u64,
}

impl VariantTableReader {
    /// Opens `path` in the format its name says; the error names the file and what is missing.
    pub fn open(path: &Path) -> Result<Self, TableError> {
        let format = TableFormat::of(path).ok_or_else(|| TableError::new(path, "not a .parquet, .csv or .tsv file"))?;
        let batches: Box<dyn RecordBatchReader> = match format {
            TableFormat::Parquet => {
                let file = File::open(path).map_err(|e| TableError::new(path, e))?;
                let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| TableError::new(path, e))?;
                Box::new(
                    builder
                        .with_batch_size(BATCH_ROWS)
                        .build()
                        .map_err(|e| TableError::new(path, e))?,
                )
            }
            TableFormat::Csv | TableFormat::Tsv => text_batches(path, format).map_err(|e| TableError::new(path, e))?,
        };
        let columns = variant_columns(&batches.schema()).map_err(|e| TableError::new(path, e))?;
        Ok(VariantTableReader {
            path: path.to_path_buf(),
            columns,
            batches,
            rows: 0,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The input's columns.
    pub fn schema(&self) -> SchemaRef {
        self.batches.schema()
    }

    /// The next batch; an error names the file and, for a bad value, its row.
    pub fn next_batch(&mut self) -> Result<Option<TableBatch>, TableError> {
        let Some(rows) = self.batches.next() else {
            return Ok(None);
        };
        let rows = rows.map_err(|e| TableError::new(&self.path, e))?;
        let text = |k: usize| -> Result<StringArray, TableError> {
            let column =
                cast(rows.column(self.columns[k]), &DataType::Utf8).map_err(|e| TableError::new(&self.path, e))?;
            Ok(column
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("cast to Utf8")
                .clone())
        };
        let (chrom, reference, alt) = (text(0)?, text(2)?, text(3)?);
        let pos = cast(rows.column(self.columns[1]), &DataType::Int64).map_err(|e| TableError::new(&self.path, e))?;
        let pos = pos.as_any().downcast_ref::<Int64Array>().expect("cast to Int64");
        let mut variants = Vec::with_capacity(rows.num_rows());
        for i in 0..rows.num_rows() {
            let row = self.rows + i as u64 + 1;
            let fault = |reason: String| TableError {
                path: self.path.clone(),
                row: Some(row),
                reason,
            };
            let (Some(p), false, false, false) = (
                pos.is_valid(i).then(|| pos.value(i)),
                chrom.is_null(i),
                reference.is_null(i),
                alt.is_null(i),
            ) else {
                return Err(fault("chrom, pos, ref and alt must all be given".into()));
            };
            let pos = u64::try_from(p)
                .ok()
                .filter(|&p| p >= 1)
                .ok_or_else(|| fault(format!("pos {p}: positions are 1-based")))?;
            variants.push(TableVariant {
                chrom: chrom.value(i).to_string(),
                pos,
                reference: reference.value(i).to_string(),
                alt: alt.value(i).to_string(),
            });
        }
        self.rows += rows.num_rows() as u64;
        Ok(Some(TableBatch { rows, variants }))
    }
}

/// A CSV or TSV (plain or gzip) with a header line, its column types inferred from its first
/// rows; a pos column that is not whole numbers is caught when a batch is read.
fn text_batches(path: &Path, format: TableFormat) -> Result<Box<dyn RecordBatchReader>, ArrowError> {
    let csv = arrow_csv::reader::Format::default()
        .with_header(true)
        .with_delimiter(format.delimiter());
    // Two passes: the types from the first rows, then the rows; a gzip file is opened twice.
    let (schema, _) = csv.infer_schema(input::open(path)?, Some(1000))?;
    let reader = arrow_csv::ReaderBuilder::new(Arc::new(schema))
        .with_format(csv)
        .with_batch_size(BATCH_ROWS)
        .build_buffered(input::open(path)?)?;
    Ok(Box::new(reader))
}

/// Where the scored table goes.
enum Sink<W: Write + Send> {
    Parquet(Box<ArrowWriter<W>>),
    Text(Box<arrow_csv::Writer<W>>),
}

/// Writes the input's rows with `score` (Float32, empty where not scored) and `reason` (why
/// not, empty where scored).
pub struct VariantTableWriter<W: Write + Send> {
    schema: SchemaRef,
    sink: Sink<W>,
}

impl<W: Write + Send> VariantTableWriter<W> {
    /// A writer of `format` for rows of `input` into `out`.
    pub fn new(out: W, format: TableFormat, input: &Schema) -> Result<Self, ArrowError> {
        let mut fields: Vec<Arc<Field>> = input.fields().iter().cloned().collect();
        fields.push(Arc::new(Field::new(SCORE_COLUMNS[0], DataType::Float32, true)));
        fields.push(Arc::new(Field::new(SCORE_COLUMNS[1], DataType::Utf8, true)));
        let schema = Arc::new(Schema::new_with_metadata(fields, input.metadata().clone()));
        let sink = match format {
            TableFormat::Parquet => {
                // Row groups of one reading batch each: the writer holds no more than that.
                let properties = WriterProperties::builder()
                    .set_max_row_group_row_count(Some(BATCH_ROWS))
                    .set_compression(parquet::basic::Compression::SNAPPY)
                    .build();
                Sink::Parquet(Box::new(ArrowWriter::try_new(out, schema.clone(), Some(properties))?))
            }
            TableFormat::Csv | TableFormat::Tsv => Sink::Text(Box::new(
                arrow_csv::WriterBuilder::new()
                    .with_header(true)
                    .with_delimiter(format.delimiter())
                    .build(out),
            )),
        };
        Ok(VariantTableWriter { schema, sink })
    }

    /// Writes `rows` with their scores (`None`: not scored) and reasons.
    pub fn write(
        &mut self,
        rows: &RecordBatch,
        scores: Vec<Option<f32>>,
        reasons: Vec<Option<&str>>,
    ) -> Result<(), ArrowError> {
        let mut columns: Vec<ArrayRef> = rows.columns().to_vec();
        columns.push(Arc::new(Float32Array::from(scores)));
        columns.push(Arc::new(StringArray::from(reasons)));
        let batch = RecordBatch::try_new(self.schema.clone(), columns)?;
        match &mut self.sink {
            Sink::Parquet(writer) => writer.write(&batch).map_err(|e| ArrowError::ExternalError(Box::new(e))),
            Sink::Text(writer) => writer.write(&batch),
        }
    }

    /// Ends the output (Parquet's footer) and hands back the stream.
    pub fn finish(self) -> Result<W, ArrowError> {
        match self.sink {
            Sink::Parquet(writer) => writer.into_inner().map_err(|e| ArrowError::ExternalError(Box::new(e))),
            Sink::Text(writer) => Ok(writer.into_inner()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Int32Array;

    fn write_text(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn formats_come_from_the_name() {
        for (name, format) in [
            ("v.parquet", Some(TableFormat::Parquet)),
            ("v.PQ", Some(TableFormat::Parquet)),
            ("v.csv.gz", Some(TableFormat::Csv)),
            ("v.tsv", Some(TableFormat::Tsv)),
            ("v.vcf.gz", None),
            ("v", None),
        ] {
            assert_eq!(TableFormat::of(Path::new(name)), format, "{name}");
        }
    }

    #[test]
    fn a_tsv_is_read_in_batches_with_its_extra_columns() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("CHROM\tPOS\tREF\tALT\tlabel\n");
        for k in 0..BATCH_ROWS + 5 {
            text.push_str(&format!("22\t{}\tA\tG\t{}\n", k + 1, k % 2));
        }
        let path = write_text(dir.path(), "v.tsv", &text);
        let mut reader = VariantTableReader::open(&path).unwrap();
        assert_eq!(reader.schema().fields().len(), 5);
        let first = reader.next_batch().unwrap().unwrap();
        assert_eq!(first.variants.len(), BATCH_ROWS);
        assert_eq!(
            first.variants[2],
            TableVariant {
                chrom: "22".into(),
                pos: 3,
                reference: "A".into(),
                alt: "G".into()
            }
        );
        assert_eq!(reader.next_batch().unwrap().unwrap().variants.len(), 5);
        assert!(reader.next_batch().unwrap().is_none());
    }

    #[test]
    fn missing_columns_and_bad_positions_name_the_file_and_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_text(dir.path(), "v.csv", "chrom,pos,ref\n1,5,A\n");
        let error = VariantTableReader::open(&path).err().unwrap().to_string();
        assert!(error.contains("v.csv") && error.contains("no `alt` column"), "{error}");
        let path = write_text(dir.path(), "w.csv", "chrom,pos,ref,alt\n1,5,A,G\n1,0,A,G\n");
        let error = VariantTableReader::open(&path)
            .unwrap()
            .next_batch()
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("w.csv: row 2: pos 0"), "{error}");
        let path = write_text(dir.path(), "x.csv", "chrom,pos,ref,alt,score\n1,5,A,G,3\n");
        let error = VariantTableReader::open(&path).err().unwrap().to_string();
        assert!(error.contains("already has a `score` column"), "{error}");
    }

    #[test]
    fn parquet_round_trips_every_input_column_with_the_scores() {
        let dir = tempfile::tempdir().unwrap();
        let schema = Arc::new(Schema::new(vec![
            Field::new("chrom", DataType::Utf8, false),
            Field::new("pos", DataType::Int32, false),
            Field::new("ref", DataType::Utf8, false),
            Field::new("alt", DataType::Utf8, false),
            Field::new("gene", DataType::Utf8, true),
        ]));
        let rows = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec!["chr1", "chr2"])),
                Arc::new(Int32Array::from(vec![10, 20])),
                Arc::new(StringArray::from(vec!["A", "C"])),
                Arc::new(StringArray::from(vec!["G", "CT"])),
                Arc::new(StringArray::from(vec![Some("BRCA2"), None])),
            ],
        )
        .unwrap();
        let input = dir.path().join("in.parquet");
        let mut writer = ArrowWriter::try_new(File::create(&input).unwrap(), schema, None).unwrap();
        writer.write(&rows).unwrap();
        writer.close().unwrap();

        let mut reader = VariantTableReader::open(&input).unwrap();
        let batch = reader.next_batch().unwrap().unwrap();
        assert_eq!(batch.variants[1].pos, 20);
        let output = dir.path().join("out.parquet");
        let mut out =
            VariantTableWriter::new(File::create(&output).unwrap(), TableFormat::Parquet, &reader.schema()).unwrap();
        out.write(&batch.rows, vec![Some(-1.5), None], vec![None, Some("not_snv")])
            .unwrap();
        out.finish().unwrap();

        let back: Vec<RecordBatch> = ParquetRecordBatchReaderBuilder::try_new(File::open(&output).unwrap())
            .unwrap()
            .build()
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let back = &back[0];
        let names: Vec<&str> = back.schema_ref().fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["chrom", "pos", "ref", "alt", "gene", "score", "reason"]);
        for k in 0..5 {
            assert_eq!(back.column(k).as_ref(), rows.column(k).as_ref(), "column {k}");
        }
        let scores = back.column(5).as_any().downcast_ref::<Float32Array>().unwrap();
        assert_eq!((scores.value(0), scores.is_null(1)), (-1.5, true));
        let reasons = back.column(6).as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!((reasons.is_null(0), reasons.value(1)), (true, "not_snv"));
    }
}
