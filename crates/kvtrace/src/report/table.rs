//! A small table model rendered as a markdown table or CSV, with numbers formatted in
//! one place (thousands separators, fixed decimals, `%`).

use std::fmt::Write as _;

use crate::report::units::group_thousands;

/// A table cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// A number, its decimals, and whether it is a percentage.
    Num(f64, usize, bool),
    Text(String),
    Empty,
}

impl Cell {
    /// For humans: `12,345`, `3.5`, `81.2%`, `–` for a missing value.
    pub fn human(&self) -> String {
        match self {
            Cell::Num(x, decimals, pct) => {
                let s = group_thousands(&format!("{x:.decimals$}"));
                if *pct {
                    format!("{s}%")
                } else {
                    s
                }
            }
            Cell::Text(t) => t.clone(),
            Cell::Empty => "–".to_owned(),
        }
    }

    /// For machines: plain digits, no separators, empty when missing.
    pub fn raw(&self) -> String {
        match self {
            Cell::Num(x, decimals, _) => format!("{x:.decimals$}"),
            Cell::Text(t) => t.clone(),
            Cell::Empty => String::new(),
        }
    }
}

/// Records as CSV text, written by the csv crate (fields quoted when they hold a comma,
/// a quote, CR or LF; quotes doubled), every record ending in `\n`.
pub fn csv_text<I, R, F>(records: I) -> String
where
    I: IntoIterator<Item = R>,
    R: IntoIterator<Item = F>,
    F: AsRef<[u8]>,
{
    let mut w = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    for r in records {
        // Writing to memory cannot fail.
        let _ = w.write_record(r);
    }
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

/// A markdown table cell: `|` escaped, line breaks as spaces (a tool or model name
/// holding them would break the table).
fn md_cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\r', '\n'], " ")
}

/// A table with a header row and labelled rows.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<(String, Vec<Cell>)>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, label: &str, cells: Vec<Cell>) {
        self.rows.push((label.to_owned(), cells));
    }

    /// A GitHub-flavoured markdown table, numbers right-aligned.
    pub fn markdown(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "| {} |", self.header.join(" | "));
        let aligns: Vec<&str> = (0..self.header.len())
            .map(|i| if i == 0 { "---" } else { "---:" })
            .collect();
        let _ = writeln!(o, "|{}|", aligns.join("|"));
        for (label, cells) in &self.rows {
            let cells: Vec<String> = cells.iter().map(|c| md_cell(&c.human())).collect();
            let _ = writeln!(o, "| {} | {} |", md_cell(label), cells.join(" | "));
        }
        o
    }

    /// CSV with a snake_case-free header as given and raw numbers.
    pub fn csv(&self) -> String {
        let rows = self.rows.iter().map(|(label, cells)| {
            std::iter::once(label.clone())
                .chain(cells.iter().map(Cell::raw))
                .collect::<Vec<_>>()
        });
        csv_text(std::iter::once(self.header.clone()).chain(rows))
    }
}

/// Tables as one tidy CSV: a `metric,statistic,value` row per cell, so several tables
/// of different shapes fit one file that data tools read as it is. The statistic is the
/// column's header, lower-cased.
pub fn tidy_csv(tables: &[&Table]) -> String {
    let header = ["metric", "statistic", "value"].map(str::to_owned).to_vec();
    let rows = tables.iter().flat_map(|t| {
        t.rows.iter().flat_map(move |(label, cells)| {
            t.header
                .iter()
                .skip(1)
                .zip(cells)
                .map(move |(stat, cell)| vec![label.clone(), stat.to_lowercase(), cell.raw()])
        })
    });
    csv_text(std::iter::once(header).chain(rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_and_rounded() {
        assert_eq!(Cell::Num(1234567.0, 0, false).human(), "1,234,567");
        assert_eq!(Cell::Num(-1234.56, 1, false).human(), "-1,234.6");
        assert_eq!(Cell::Num(81.25, 1, true).human(), "81.2%");
        assert_eq!(Cell::Num(999.0, 0, false).human(), "999");
        assert_eq!(Cell::Empty.raw(), "");
    }

    #[test]
    fn markdown_cells_are_escaped() {
        let mut t = Table::new(&["Metric", "Value"]);
        t.push("Tool calls: a|b", vec![Cell::Text("x\ny|z".into())]);
        let md = t.markdown();
        let row = md.lines().nth(2).unwrap();
        assert_eq!(row, "| Tool calls: a\\|b | x y\\|z |");
    }

    #[test]
    fn markdown_and_csv_shapes() {
        let mut t = Table::new(&["Metric", "Min"]);
        t.push("Rows, all", vec![Cell::Num(1000.0, 0, false)]);
        assert_eq!(
            t.markdown(),
            "| Metric | Min |\n|---|---:|\n| Rows, all | 1,000 |\n"
        );
        assert_eq!(t.csv(), "Metric,Min\n\"Rows, all\",1000\n");
    }
}
