//! Rows printed as aligned columns for a terminal or as CSV, for the
//! commands that list things (`roster`, `rooms`).

use std::io::Write;

use anyhow::Context;

use super::tail::clean;
use crate::export::guard;

/// Writes `rows` under `header` as columns two spaces apart, every cell
/// cleaned of control characters so a hostile name stays on its line.
pub fn write_table(
    out: &mut impl Write,
    header: &[&str],
    rows: &[Vec<String>],
) -> anyhow::Result<()> {
    let rows: Vec<Vec<String>> = std::iter::once(header.iter().map(|h| h.to_string()).collect())
        .chain(
            rows.iter()
                .map(|row| row.iter().map(|cell| clean(cell).into_owned()).collect()),
        )
        .collect();
    let mut widths = vec![0; header.len()];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in &rows {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  "));
            }
        }
        writeln!(out, "{}", line.trim_end()).context("writing to stdout")?;
    }
    Ok(())
}

/// Writes `rows` under `header` as CSV, each text cell with the formula
/// guard `export` uses.
pub fn write_csv(
    out: &mut impl Write,
    header: &[&str],
    rows: &[Vec<String>],
) -> anyhow::Result<()> {
    let mut csv = csv::Writer::from_writer(out);
    csv.write_record(header).context("writing to stdout")?;
    let mut guarded = String::new();
    for row in rows {
        for cell in row {
            csv.write_field(guard(cell, true, &mut guarded))
                .context("writing to stdout")?;
        }
        csv.write_record(None::<&[u8]>)
            .context("writing to stdout")?;
    }
    csv.flush().context("writing to stdout")?;
    Ok(())
}
