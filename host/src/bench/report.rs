//! What a benchmark run reports: a text table per section as it goes, and
//! every figure by section and name, printed as one JSON object at the end for
//! `weir bench --json` so that a run can be compared with the last.

use std::fmt;
use std::io::Write;

use serde_json::{Map, Value};

use crate::demo::DemoError;

/// The sink of a benchmark run.
pub struct Report<'a> {
    out: &'a mut dyn Write,
    json: bool,
    figures: Map<String, Value>,
    section: String,
}

impl<'a> Report<'a> {
    /// Text tables on `out` as the figures come.
    pub fn text(out: &'a mut dyn Write) -> Report<'a> {
        Report::new(out, false)
    }

    /// Nothing until [`Report::finish`], which prints every figure as JSON.
    pub fn json(out: &'a mut dyn Write) -> Report<'a> {
        Report::new(out, true)
    }

    fn new(out: &'a mut dyn Write, json: bool) -> Report<'a> {
        Report {
            out,
            json,
            figures: Map::new(),
            section: String::new(),
        }
    }

    /// Starts a section: `key` names it in the JSON, `title` heads its table.
    pub fn section(&mut self, key: &str, title: fmt::Arguments) -> Result<(), DemoError> {
        self.section = key.to_owned();
        self.figures
            .entry(key)
            .or_insert_with(|| Value::Object(Map::new()));
        let gap = if self.figures.len() > 1 { "\n" } else { "" };
        self.line(format_args!("{gap}## {title}"))
    }

    /// One line of the text table (nothing in JSON mode).
    pub fn line(&mut self, text: fmt::Arguments) -> Result<(), DemoError> {
        if self.json {
            return Ok(());
        }
        writeln!(self.out, "{text}").map_err(DemoError::Output)
    }

    /// Records `value` as `name` in the current section.
    pub fn figure(&mut self, name: impl Into<String>, value: f64) {
        let section = self
            .figures
            .entry(self.section.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(figures) = section {
            let value = serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number);
            figures.insert(name.into(), value);
        }
    }

    /// The figures recorded so far, by section.
    pub fn figures(&self) -> &Map<String, Value> {
        &self.figures
    }

    /// Ends the run: in JSON mode, prints every figure.
    pub fn finish(self) -> Result<(), DemoError> {
        if !self.json {
            return Ok(());
        }
        let text = serde_json::to_string_pretty(&self.figures).expect("figures serialize");
        writeln!(self.out, "{text}").map_err(DemoError::Output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_mode_prints_only_the_figures_by_section() {
        let mut out = Vec::new();
        let mut report = Report::json(&mut out);
        report.section("append", format_args!("append")).unwrap();
        report.line(format_args!("a table row")).unwrap();
        report.figure("ratio_1024", 0.81);
        report.section("swap", format_args!("swap pause")).unwrap();
        report.figure("plain_p99_us", f64::NAN);
        report.finish().unwrap();
        let parsed: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(parsed["append"]["ratio_1024"], 0.81);
        assert_eq!(parsed["swap"]["plain_p99_us"], Value::Null);
        assert!(!String::from_utf8(out).unwrap().contains("table row"));
    }

    #[test]
    fn text_mode_prints_sections_and_lines_as_they_come() {
        let mut out = Vec::new();
        let mut report = Report::text(&mut out);
        report.section("a", format_args!("first")).unwrap();
        report.line(format_args!("row {}", 1)).unwrap();
        report.figure("x", 1.0);
        report.section("b", format_args!("second")).unwrap();
        report.finish().unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "## first\nrow 1\n\n## second\n"
        );
    }
}
