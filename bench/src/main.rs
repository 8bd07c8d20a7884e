//! `stytch-sso-bench`: measures how the operator's cost grows with its work, on the control
//! plane of `KUBECONFIG`, with the release builds of the operator and the fake Stytch (see
//! the README's "Benchmark" section; `hack/bench.sh` runs it).
//!
//! - `run` measures each configuration (objects x latency) `--runs` times and writes one JSON
//!   file per configuration into `--out`;
//! - `report` turns those files into `report.md` and `report.json`.

mod baseline;
mod error;
mod fake;
mod measure;
mod processes;
mod report;
mod run;
mod stats;
mod workload;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::{Error, Result};
use crate::processes::Locations;
use crate::report::ConfigurationResult;
use crate::run::Configuration;

#[derive(Parser, Debug)]
#[command(about = "Benchmark of stytch-sso-operator against the fake Stytch")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Measure configurations on the control plane of KUBECONFIG.
    Run(RunArgs),
    /// Write report.md and report.json from the files `run` wrote.
    Report {
        /// Directory holding the JSON files of `run`.
        #[arg(long)]
        results: PathBuf,
        /// Where the report goes.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Number of OidcConnections (repeatable).
    #[arg(long = "objects", default_values_t = [1000, 10000])]
    objects: Vec<usize>,
    /// Organizations the connections are spread over.
    #[arg(long, default_value_t = 100)]
    organizations: usize,
    /// Secrets no OidcConnection references, in a namespace of their own.
    #[arg(long, default_value_t = 10000)]
    unrelated_secrets: usize,
    /// Stytch calls per second per project: the fake's limit and the operator's.
    #[arg(long, default_value_t = 100)]
    rate: u32,
    /// The operator's `--stytch-burst`; kept below the fake's bucket (one second of calls),
    /// so that the operator's own limit, not the fake's 429s, paces it.
    #[arg(long, default_value_t = 10)]
    operator_burst: u32,
    /// The operator's `--concurrency`; must exceed rate x latency to keep the limit busy.
    #[arg(long, default_value_t = 64)]
    concurrency: u16,
    /// Latency the fake adds to every Stytch call, in ms (repeatable).
    #[arg(long = "latency-ms", default_values_t = [0, 100])]
    latency_ms: Vec<u64>,
    /// The operator's `--resync-interval` in seconds, and the length of the steady-state window.
    #[arg(long, default_value_t = 60)]
    resync_interval_secs: u64,
    /// Sequential single spec edits per run.
    #[arg(long, default_value_t = 50)]
    edits: usize,
    /// Connections the plain script runs through; its time is extrapolated to all of them.
    #[arg(long, default_value_t = 1000)]
    baseline_sample: usize,
    /// Runs per configuration.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// One run of 1,000 objects at the first latency only.
    #[arg(long)]
    quick: bool,
    /// Where the release builds of stytch-sso-operator and fake-stytch are.
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// Where each configuration's JSON and each run's logs go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Run(args) => run(args).await,
        Command::Report { results, out } => write_report(&results, &out),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("stytch-sso-bench: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(mut args: RunArgs) -> Result<()> {
    if args.quick {
        args.objects = vec![1000];
        args.latency_ms.truncate(1);
        args.runs = 1;
    }
    let client = kube::Client::try_default().await?;
    eprintln!("creating {} unrelated Secrets", args.unrelated_secrets);
    workload::ensure_unrelated_secrets(&client, args.unrelated_secrets).await?;

    for &objects in &args.objects {
        for &latency_ms in &args.latency_ms {
            let configuration = configuration(&args, objects, latency_ms);
            let result = measure_configuration(&client, &args, configuration).await?;
            std::fs::create_dir_all(&args.out)?;
            let path = args.out.join(result.file_name());
            std::fs::write(&path, serde_json::to_string_pretty(&result)?)?;
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(())
}

fn configuration(args: &RunArgs, objects: usize, latency_ms: u64) -> Configuration {
    Configuration {
        objects,
        organizations: args.organizations,
        unrelated_secrets: args.unrelated_secrets,
        rate: args.rate,
        fake_burst: args.rate,
        operator_burst: args.operator_burst.min(args.rate),
        concurrency: args.concurrency,
        latency_ms,
        resync_interval_secs: args.resync_interval_secs,
        edits: args.edits,
        baseline_sample: args.baseline_sample,
    }
}

async fn measure_configuration(
    client: &kube::Client,
    args: &RunArgs,
    configuration: Configuration,
) -> Result<ConfigurationResult> {
    let started = jiff::Timestamp::now();
    let mut runs = Vec::new();
    for run in 1..=args.runs {
        // Unique across invocations on one control plane: namespaces are never really deleted.
        let namespace = format!(
            "bench-{}-{}ms-{}-{run}",
            configuration.objects,
            configuration.latency_ms,
            started.as_second() % 100_000
        );
        let locations = Locations {
            bin_dir: args.bin_dir.clone(),
            work_dir: args.out.join("runs").join(&namespace),
        };
        std::fs::create_dir_all(&locations.work_dir)?;
        runs.push(run::run_once(client, &locations, &configuration, run, &namespace).await?);
    }
    Ok(ConfigurationResult {
        configuration,
        runs,
        started: started.to_string(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
    })
}

fn write_report(results_dir: &Path, out: &Path) -> Result<()> {
    let mut results = Vec::new();
    for entry in std::fs::read_dir(results_dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "json") {
            let text = std::fs::read_to_string(&path)?;
            results.push(serde_json::from_str::<ConfigurationResult>(&text)?);
        }
    }
    if results.is_empty() {
        return Err(Error::Setup(format!(
            "no results in {}: run `stytch-sso-bench run` first",
            results_dir.display()
        )));
    }
    results.sort_by_key(|r| {
        let c = &r.configuration;
        (c.objects, c.latency_ms, c.concurrency)
    });
    report::write(out, &results)?;
    eprintln!("wrote {}", out.join("report.md").display());
    Ok(())
}
