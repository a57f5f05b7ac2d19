//! Report rendering shared by the reporting commands: tables, and one file per output
//! format behind the [`Format`] switch (markdown, CSV; JSON is serde's).

pub mod table;
pub mod units;

/// Output formats of the reporting commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Csv,
    Json,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "markdown" | "md" => Ok(Format::Markdown),
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            other => Err(format!("unknown format {other:?} (markdown, csv or json)")),
        }
    }
}
