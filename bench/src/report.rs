//! The report: each configuration's runs, their medians, minimums and maximums, as Markdown
//! for people and JSON for tools. Ratios are computed within each run, then summarised.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::Result;
use crate::run::{Configuration, RunFigures};
use crate::stats::{max, median, min};

/// What `run` writes for one configuration, and `report` reads back.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConfigurationResult {
    pub configuration: Configuration,
    pub runs: Vec<RunFigures>,
    /// When the first run started (RFC 3339).
    pub started: String,
    pub cpus: usize,
}

impl ConfigurationResult {
    pub fn file_name(&self) -> String {
        let c = &self.configuration;
        format!(
            "objects-{}-latency-{}ms-concurrency-{}.json",
            c.objects, c.latency_ms, c.concurrency
        )
    }
}

/// One line of a table: a figure over the runs.
struct Row {
    figure: &'static str,
    key: &'static str,
    label: String,
    goal: String,
    values: Vec<f64>,
    decimals: usize,
}

fn rows(result: &ConfigurationResult) -> Vec<Row> {
    let c = &result.configuration;
    let runs = &result.runs;
    let take = |f: &dyn Fn(&RunFigures) -> f64| runs.iter().map(f).collect::<Vec<_>>();
    let sample = runs.first().map_or(0, |r| r.baseline.sample);
    let extrapolated = runs.iter().any(|r| r.baseline.extrapolated);
    let script_label = if extrapolated {
        format!(
            "plain script, seconds for all {} (extrapolated from {sample})",
            c.objects
        )
    } else {
        format!("plain script, seconds for all {}", c.objects)
    };
    // A figure a run could not measure (no edit got through) is left out of its summary.
    let row = |figure, key, label: &str, goal: &str, values: Vec<f64>, decimals| Row {
        figure,
        key,
        label: label.to_owned(),
        goal: goal.to_owned(),
        values: values.into_iter().filter(|v| v.is_finite()).collect(),
        decimals,
    };
    vec![
        row(
            "1",
            "convergence_ratio",
            "convergence / (N/R)",
            "≤ 1.2",
            take(&|r| r.convergence_ratio),
            2,
        ),
        row(
            "1",
            "convergence_seconds",
            "convergence, s",
            "",
            take(&|r| r.convergence_seconds),
            1,
        ),
        row(
            "1",
            "apply_seconds",
            "creating the objects, s",
            "",
            take(&|r| r.apply_seconds),
            1,
        ),
        row(
            "2",
            "first_sync_ratio",
            "first-sync calls / (M + N)",
            "≤ 1.05",
            take(&|r| r.first_sync.ratio),
            2,
        ),
        row(
            "2",
            "first_sync_calls",
            "first-sync calls",
            "",
            take(&|r| r.first_sync.calls as f64),
            0,
        ),
        row(
            "2",
            "first_sync_lists",
            "first-sync lists",
            "",
            take(&|r| r.first_sync.lists as f64),
            0,
        ),
        row(
            "2",
            "first_sync_updates",
            "first-sync updates",
            "",
            take(&|r| r.first_sync.updates as f64),
            0,
        ),
        row(
            "2",
            "first_sync_throttled",
            "first-sync 429s",
            "",
            take(&|r| r.first_sync.throttled as f64),
            0,
        ),
        row(
            "3",
            "steady_updates",
            "updates per resync window",
            "0",
            take(&|r| r.steady.updates as f64),
            0,
        ),
        row(
            "3",
            "steady_lists",
            "lists per resync window",
            &format!("≤ {}", c.organizations),
            take(&|r| r.steady.lists as f64),
            0,
        ),
        row(
            "3",
            "steady_most_lists_of_one_organization",
            "most lists of one organization per window",
            "≤ 1",
            take(&|r| r.steady.most_lists_of_one_organization as f64),
            0,
        ),
        row(
            "3",
            "steady_throttled",
            "429s per resync window",
            "",
            take(&|r| r.steady.throttled as f64),
            0,
        ),
        row(
            "4",
            "edit_to_update_p50_ms",
            "edit → update, p50 ms",
            "",
            take(&|r| r.edits.to_update_p50_ms.unwrap_or(f64::NAN)),
            1,
        ),
        row(
            "4",
            "edit_to_update_p99_ms",
            "edit → update, p99 ms",
            "< 250",
            take(&|r| r.edits.to_update_p99_ms.unwrap_or(f64::NAN)),
            1,
        ),
        row(
            "4",
            "edit_to_ready_p50_ms",
            "edit → Ready, p50 ms",
            "",
            take(&|r| r.edits.to_ready_p50_ms.unwrap_or(f64::NAN)),
            1,
        ),
        row(
            "4",
            "edit_to_ready_p99_ms",
            "edit → Ready, p99 ms",
            "",
            take(&|r| r.edits.to_ready_p99_ms.unwrap_or(f64::NAN)),
            1,
        ),
        row(
            "4",
            "edits_missed",
            "edits without update or Ready within 60 s",
            "0",
            take(&|r| r.edits.missed as f64),
            0,
        ),
        row(
            "4",
            "edit_phase_calls_per_second",
            "Stytch calls per second during the edits",
            "",
            take(&|r| r.edits.calls_per_second),
            1,
        ),
        row(
            "5",
            "peak_rss_mib",
            "operator peak RSS (VmHWM), MiB",
            "< 64",
            take(&|r| r.operator.peak_rss_mib),
            1,
        ),
        row(
            "5",
            "steady_rss_mib",
            "operator RSS after the resync window, MiB",
            "",
            take(&|r| r.operator.steady_rss_mib),
            1,
        ),
        row(
            "5",
            "cpu_seconds_to_convergence",
            "operator CPU to convergence, s",
            "",
            take(&|r| r.operator.cpu_seconds_to_convergence),
            2,
        ),
        row(
            "5",
            "cpu_seconds_resync_window",
            "operator CPU per resync window, s",
            "",
            take(&|r| r.operator.cpu_seconds_resync_window),
            2,
        ),
        row(
            "5",
            "cpu_seconds_total",
            "operator CPU in all, s",
            "",
            take(&|r| r.operator.cpu_seconds_total),
            2,
        ),
        row(
            "6",
            "script_seconds",
            &script_label,
            "",
            take(&|r| r.baseline.seconds),
            1,
        ),
        row(
            "6",
            "script_ratio",
            "plain script / operator convergence",
            "",
            take(&|r| r.baseline.ratio_to_operator),
            2,
        ),
    ]
}

/// Writes `report.md` and `report.json` into `out` from the configurations' results.
pub fn write(out: &Path, results: &[ConfigurationResult]) -> Result<()> {
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("report.md"), markdown(results))?;
    std::fs::write(
        out.join("report.json"),
        serde_json::to_string_pretty(&json_report(results))?,
    )?;
    Ok(())
}

fn json_report(results: &[ConfigurationResult]) -> Value {
    let configurations: Vec<Value> = results
        .iter()
        .map(|result| {
            let summary: serde_json::Map<String, Value> = rows(result)
                .into_iter()
                .map(|row| {
                    let figures = json!({
                        "median": median(&row.values), "min": min(&row.values),
                        "max": max(&row.values), "goal": row.goal, "figure": row.figure,
                    });
                    (row.key.to_owned(), figures)
                })
                .collect();
            json!({"configuration": result.configuration, "started": result.started,
                   "cpus": result.cpus, "summary": summary, "runs": result.runs})
        })
        .collect();
    json!({"configurations": configurations})
}

fn markdown(results: &[ConfigurationResult]) -> String {
    let mut md = String::from("# Benchmark report\n\n");
    md.push_str(
        "Medians over runs, with the smallest and largest run in brackets; ratios are taken \
         within each run. Figures are numbered as in the README's \"Benchmark\" section.\n\n",
    );
    md.push_str(&summary_table(results));
    for result in results {
        md.push_str(&configuration_section(result));
    }
    md
}

/// One line per configuration with the figures that have goals: what the README shows.
pub fn summary_table(results: &[ConfigurationResult]) -> String {
    let keys = [
        ("convergence_ratio", "1: convergence / (N/R) ≤ 1.2"),
        ("first_sync_ratio", "2: first-sync calls / min ≤ 1.05"),
        ("steady_updates", "3: updates / window = 0"),
        (
            "steady_most_lists_of_one_organization",
            "3: lists / org / window ≤ 1",
        ),
        ("edit_to_update_p99_ms", "4: edit → update p99 < 250 ms"),
        ("edit_to_ready_p99_ms", "4: edit → Ready p99, ms"),
        ("peak_rss_mib", "5: peak RSS < 64 MiB"),
        ("script_ratio", "6: plain script / operator"),
    ];
    let mut md = String::from("| N | latency | resync | concurrency | runs |");
    for (_, label) in keys {
        let _ = write!(md, " {label} |");
    }
    md.push_str("\n| --- | --- | --- | --- | --- |");
    md.push_str(&" --- |".repeat(keys.len()));
    md.push('\n');
    for result in results {
        let c = &result.configuration;
        let rows = rows(result);
        let _ = write!(
            md,
            "| {} | {} ms | {} s | {} | {} |",
            c.objects,
            c.latency_ms,
            c.resync_interval_secs,
            c.concurrency,
            result.runs.len()
        );
        for (key, _) in keys {
            let row = rows.iter().find(|row| row.key == key);
            let cell = row.map_or_else(String::new, median_cell);
            let _ = write!(md, " {cell} |");
        }
        md.push('\n');
    }
    md.push('\n');
    md
}

fn configuration_section(result: &ConfigurationResult) -> String {
    let c = &result.configuration;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "## N = {} objects, M = {} organizations, {} ms latency\n",
        c.objects, c.organizations, c.latency_ms
    );
    let _ = writeln!(
        md,
        "{} run(s) from {} on {} CPUs. {} unrelated Secrets; fake: {} calls/s per project, \
         bucket {}; operator: `--stytch-rate-limit {} --stytch-burst {} --concurrency {} \
         --resync-interval {}s` (the resync window); {} single edits per run.\n",
        result.runs.len(),
        result.started,
        result.cpus,
        c.unrelated_secrets,
        c.rate,
        c.fake_burst,
        c.rate,
        c.operator_burst,
        c.concurrency,
        c.resync_interval_secs,
        c.edits,
    );
    md.push_str("| # | figure | goal | median [min, max] |\n| --- | --- | --- | --- |\n");
    for row in rows(result) {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            row.figure,
            row.label,
            row.goal,
            range_cell(&row)
        );
    }
    md.push('\n');
    md
}

fn median_cell(row: &Row) -> String {
    format_value(median(&row.values), row.decimals)
}

fn range_cell(row: &Row) -> String {
    let median = format_value(median(&row.values), row.decimals);
    if row.values.len() < 2 {
        return median;
    }
    let low = format_value(min(&row.values), row.decimals);
    let high = format_value(max(&row.values), row.decimals);
    format!("{median} [{low}, {high}]")
}

fn format_value(value: Option<f64>, decimals: usize) -> String {
    match value {
        Some(value) if value.is_finite() => format!("{value:.decimals$}"),
        _ => "n/a".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::Baseline;

    fn result(extrapolated: bool) -> ConfigurationResult {
        let configuration = Configuration {
            objects: 10_000,
            organizations: 100,
            unrelated_secrets: 10_000,
            rate: 100,
            fake_burst: 100,
            operator_burst: 10,
            concurrency: 64,
            latency_ms: 100,
            resync_interval_secs: 60,
            edits: 50,
            baseline_sample: 1000,
        };
        let run = RunFigures {
            convergence_seconds: 100.0,
            baseline: Baseline {
                sample: if extrapolated { 1000 } else { 10_000 },
                extrapolated,
                seconds: 2000.0,
                ratio_to_operator: 20.0,
                ..Baseline::default()
            },
            ..RunFigures::default()
        };
        ConfigurationResult {
            configuration,
            runs: vec![run],
            started: "2026-01-01T00:00:00Z".into(),
            cpus: 2,
        }
    }

    #[test]
    fn an_extrapolated_script_time_says_so_and_from_how_many() {
        let md = markdown(&[result(true)]);
        assert!(md.contains("seconds for all 10000 (extrapolated from 1000) |  | 2000.0 |"));

        let md = markdown(&[result(false)]);
        assert!(md.contains("seconds for all 10000 |"));
        assert!(!md.contains("extrapolated from"));
    }

    #[test]
    fn a_figure_without_samples_reads_not_available() {
        let md = markdown(&[result(false)]);
        assert!(
            md.contains("| 4 | edit → update, p99 ms | < 250 | n/a |"),
            "{md}"
        );
    }
}
