//! `weir serve`: the HTTP API over the data directory, with the processors
//! recorded there and those declared in `weir.toml`, until Ctrl-C or SIGTERM.
//! The address (and token) are advertised in `<data-dir>/api.json` meanwhile,
//! so commands given the data directory reach the API.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use weir::processor::{ProcessorSpec, SpecChanges};
use weir::runtime::Runtime;
use weir::service::{AppState, Metrics};
use weir::supervisor::{Deployment, Supervisor, SupervisorError};

use super::config::ServeConfig;

/// Where `weir serve` listens when neither the flag nor the file says.
const DEFAULT_LISTEN: &str = "127.0.0.1:7070";

#[derive(clap::Args)]
pub struct ServeArgs {
    /// The configuration file (see the README); optional.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Where to listen (default 127.0.0.1:7070). Anything but loopback needs
    /// a token.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Serve `/metrics` without the token (for a Prometheus that has none).
    #[arg(long)]
    pub metrics_public: bool,
    /// On SIGTERM or Ctrl-C, how long to wait for the batches in flight
    /// before interrupting them (they are redelivered on the next start)
    /// [default: 30].
    #[arg(long, value_name = "SECS")]
    pub shutdown_grace: Option<u64>,
    /// Also speak the Kafka protocol on this address (off unless given).
    /// Anything but loopback needs a token; with a token, Kafka clients log
    /// in with SASL PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 and the token as
    /// their password (any user name).
    #[arg(long, value_name = "ADDR")]
    pub kafka_listen: Option<SocketAddr>,
    /// The HOST:PORT Kafka clients are told to connect to (default: the
    /// address each client reached).
    #[arg(long, value_name = "HOST:PORT", value_parser = weir::kafka::parse_advertised)]
    pub kafka_advertised: Option<(String, u16)>,
    /// Kafka clients speak TLS: the certificate chain (PEM, leaf first).
    #[arg(long, value_name = "PEM", requires = "kafka_tls_key")]
    pub kafka_tls_cert: Option<PathBuf>,
    /// The private key of `--kafka-tls-cert` (PEM).
    #[arg(long, value_name = "PEM", requires = "kafka_tls_cert")]
    pub kafka_tls_key: Option<PathBuf>,
    /// Create a topic a Kafka client asks Metadata for when it does not
    /// exist, with N partitions (Kafka's `auto.create.topics.enable` and
    /// `num.partitions`); off unless given.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub kafka_auto_create_partitions: Option<u32>,
}

/// Serves until a signal; `token` is the global `--token` (or `WEIR_TOKEN`),
/// which wins over the configuration file's.
pub async fn serve(dir: &Path, args: ServeArgs, token: Option<String>) -> Result<()> {
    let config = match &args.config {
        Some(path) => ServeConfig::load(path)?,
        None => ServeConfig::default(),
    };
    let listen = args
        .listen
        .or(config.listen)
        .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("a valid default address"));
    let token = token.or(config.token.clone());
    if !listen.ip().is_loopback() && token.is_none() {
        anyhow::bail!(weir::service::ServiceError::TokenRequired { addr: listen });
    }
    if let Some(kafka) = args.kafka_listen.or(config.kafka_listen)
        && !kafka.ip().is_loopback()
        && token.is_none()
    {
        anyhow::bail!(weir::kafka::KafkaError::TokenRequired { addr: kafka });
    }
    // Read before anything starts, so a bad file stops `weir serve` at once.
    let kafka_tls = kafka_tls(&args, &config)?;
    // Listen for SIGTERM and Ctrl-C before any processor starts: a signal that
    // arrives while they start must stop them gracefully, not kill the process.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        super::run::shutdown_signal().await;
        stop.send(()).ok();
    });
    let broker = super::open_broker(dir)?;
    let log = broker.log().clone();
    for topic in &config.topics {
        broker
            .declare_topic(topic)
            .with_context(|| format!("declaring topic {}", topic.name))?;
    }
    // Before any processor starts, so its first batches are counted too.
    let metrics = Metrics::install().public(args.metrics_public || config.metrics_public);
    let runtime = Arc::new(Runtime::new(dir, log.clone()).context("starting the wasm runtime")?);
    let grace = args.shutdown_grace.or(config.shutdown_grace_secs);
    let grace = grace.map_or(
        weir::supervisor::DEFAULT_SHUTDOWN_GRACE,
        Duration::from_secs,
    );
    let supervisor =
        Arc::new(Supervisor::new(dir, broker.clone(), runtime)?.with_shutdown_grace(grace));
    // The API answers while the processors are restored (`/ready` says 503
    // until they are).
    let state = Arc::new(AppState {
        broker,
        supervisor: supervisor.clone(),
        metrics,
        token,
    });
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    println!("listening on http://{}", listener.local_addr()?);
    // Other commands given this data directory find the API here; removed
    // when serving ends.
    let advertised =
        super::admin::Advertised::write(dir, listener.local_addr()?, state.token.as_deref())?;
    let shutdown = async {
        stopped.await.ok();
    };
    let (kafka_stop, kafka_stopped) = tokio::sync::watch::channel(false);
    let kafka = start_kafka(&args, &config, &state, &supervisor, kafka_tls).await?;
    let kafka = kafka.map(|(listener, kafka)| {
        let mut stopped = kafka_stopped.clone();
        tokio::spawn(weir::kafka::serve(listener, kafka, async move {
            stopped.wait_for(|stop| *stop).await.ok();
        }))
    });
    let shutdown = async move {
        shutdown.await;
        kafka_stop.send(true).ok();
    };
    let serving = tokio::spawn(weir::service::serve(listener, state, shutdown));
    start_processors(&supervisor, &config, args.config.is_some()).await?;
    supervisor.mark_ready();
    supervisor.watch_failures(Duration::from_millis(500));
    let every = config.retention_check_secs.unwrap_or(60).max(1);
    log.maintain_every(Some(Duration::from_secs(every)));
    serving
        .await
        .context("the server task")?
        .context("serving")?;
    if let Some(kafka) = kafka {
        kafka.await.context("the Kafka listener task")??;
    }
    drop(advertised);
    Ok(())
}

/// Binds the Kafka listener when `--kafka-listen` (or `kafka_listen`) asks
/// for one and prints `kafka listening on HOST:PORT` (after the HTTP line).
async fn start_kafka(
    args: &ServeArgs,
    config: &ServeConfig,
    state: &AppState,
    supervisor: &Arc<Supervisor>,
    tls: Option<weir::kafka::tls::TlsAcceptor>,
) -> Result<Option<(tokio::net::TcpListener, Arc<weir::kafka::KafkaState>)>> {
    // A Kafka transaction commit a crash cut short is finished first.
    weir::kafka::transactions::recover(&state.broker)
        .context("finishing a Kafka transaction commit cut short")?;
    let Some(listen) = args.kafka_listen.or(config.kafka_listen) else {
        return Ok(None);
    };
    let advertised = match (&args.kafka_advertised, &config.kafka_advertised) {
        (Some(a), _) => Some(a.clone()),
        (None, Some(a)) => Some(weir::kafka::parse_advertised(a).map_err(anyhow::Error::msg)?),
        (None, None) => None,
    };
    if config.kafka_auto_create_partitions == Some(0) {
        anyhow::bail!("kafka_auto_create_partitions must be at least 1");
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the Kafka listener {listen}"))?;
    let kafka = weir::kafka::KafkaState::new(state.broker.clone(), advertised)
        .with_token(state.token.clone())
        .context("deriving the Kafka listener's SASL credentials")?
        .with_tls(tls)
        .with_supervisor(supervisor.clone())
        .with_auto_create_partitions(
            args.kafka_auto_create_partitions
                .or(config.kafka_auto_create_partitions),
        );
    // Transactional ids' owners from before a restart, their epochs bumped.
    weir::kafka::transactions::restore(&kafka).context("reading back Kafka transactional ids")?;
    println!("kafka listening on {}", listener.local_addr()?);
    Ok(Some((listener, Arc::new(kafka))))
}

/// The Kafka listener's TLS acceptor when the flags (which win) or the file
/// give a certificate and key.
fn kafka_tls(
    args: &ServeArgs,
    config: &ServeConfig,
) -> Result<Option<weir::kafka::tls::TlsAcceptor>> {
    let files = match (&args.kafka_tls_cert, &args.kafka_tls_key) {
        (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
        _ => config.kafka_tls()?,
    };
    let Some((cert, key)) = files else {
        return Ok(None);
    };
    if args.kafka_listen.or(config.kafka_listen).is_none() {
        anyhow::bail!("a Kafka TLS certificate without a Kafka listener: add --kafka-listen");
    }
    let acceptor =
        weir::kafka::tls::acceptor(&cert, &key).context("setting up TLS for the Kafka listener")?;
    Ok(Some(acceptor))
}

/// Restores the recorded processors (with the declared settings) and starts
/// the declared ones that are new; with a configuration `file`, first removes
/// those it declared before and no longer does.
async fn start_processors(supervisor: &Supervisor, config: &ServeConfig, file: bool) -> Result<()> {
    // The declared processors' components are stored first, so a recorded
    // one starts with what the file declares for it.
    let mut declared = BTreeMap::new();
    for p in &config.processors {
        let wasm =
            std::fs::read(&p.wasm).with_context(|| format!("reading {}", p.wasm.display()))?;
        let component = supervisor
            .add_component(wasm)
            .await
            .with_context(|| format!("loading processor {}'s component", p.name))?;
        declared.insert(p.name.clone(), (component, p.settings.clone()));
    }
    if file {
        let names: Vec<String> = declared.keys().cloned().collect();
        let removed = supervisor
            .remove_undeclared(&names)
            .await
            .context("removing processors no longer in the configuration")?;
        if !removed.is_empty() {
            tracing::info!(
                ?removed,
                "removed processors the configuration no longer declares"
            );
        }
    }
    let failed = supervisor
        .restore_with(&declared)
        .await
        .context("restoring deployments with the configuration's settings")?;
    if !failed.is_empty() {
        tracing::warn!(
            ?failed,
            "some recorded processors could not start; see their status"
        );
    }
    for (name, (component, settings)) in declared {
        create_declared(supervisor, &name, component, &settings)
            .await
            .with_context(|| format!("starting processor {name} from the configuration"))?;
    }
    Ok(())
}

/// Starts a processor the configuration declares with the settings it gives
/// (defaults for the rest), unless one of that name is recorded: that one
/// was restored with the declared component and settings applied (see
/// [`Supervisor::restore_with`]).
async fn create_declared(
    supervisor: &Supervisor,
    name: &str,
    component: String,
    settings: &SpecChanges,
) -> Result<()> {
    match supervisor.deployment(name).await {
        Ok(_) => Ok(()),
        Err(SupervisorError::UnknownProcessor(_)) => {
            let deployment = Deployment {
                name: name.to_string(),
                component,
                spec: ProcessorSpec::default().apply(settings)?,
                paused: false,
                paused_reason: None,
                shadow_of: None,
                from_config: true,
            };
            supervisor.create(deployment).await?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
