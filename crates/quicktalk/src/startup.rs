//! Building and running one server instance: [`Application::build`] wires the
//! services together and binds the listeners; [`Application::run_until_stopped`]
//! serves until the shutdown future resolves, then shuts down in order: stop
//! accepting, commit every accepted message (its RECEIPT is queued), close the
//! connections (their queues flush first), return.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::bus::local::LocalBus;
use crate::bus::Bus;
use crate::cluster::{Cluster, ClusterConfig, RecordHook, SharedMatchEngine};
use crate::config::Config;
use crate::config::Database;
use crate::domain::accounts::Accounts;
use crate::domain::matching::{LocalMatchEngine, MatchEngine, MatchService, MatcherConfig};
use crate::domain::media::{MediaLimits, MediaService};
use crate::domain::moderation::{AutoBan, Escalation};
use crate::domain::moderators::Moderation;
use crate::domain::people::People;
use crate::domain::pipeline::{LocalPipeline, Pipeline};
use crate::domain::profiles::Profiles;
use crate::domain::push::notifier::Notifier;
use crate::domain::push::planner::Timing;
use crate::domain::push::{Push, PushConfig, PushTasks};
use crate::domain::rooms::Rooms;
use crate::domain::signed_urls::UrlSigner;
use crate::domain::tokens::TokenKeys;
use crate::fanout::Hub;
use crate::limits::Limits;
use crate::media::MediaStoreSpec;
use crate::metrics::Metrics;
use crate::push::deliver::EndpointRules;
use crate::push::vapid::VapidKey;
use crate::state::AppState;
use crate::store::postgres::PostgresStore;
use crate::store::sqlite::SqliteStore;
use crate::store::Store;

pub struct Application {
    listener: TcpListener,
    stomp_listener: Option<TcpListener>,
    metrics_listener: Option<TcpListener>,
    state: Arc<AppState>,
    pipeline_stop: CancellationToken,
    pipeline_task: tokio::task::JoinHandle<()>,
    /// Push notifications' tasks: stopped after the pipeline drained (pushes
    /// still pending then are dropped; a push is a hint, the message is stored).
    push_stop: CancellationToken,
    push_tasks: PushTasks,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with_store(config, |store| store).await
    }

    /// Like [`Application::build`], with the configured store passed through
    /// `wrap` first: tests inject faults with it (e.g. a store that panics).
    pub async fn build_with_store(
        config: Config,
        wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>,
    ) -> anyhow::Result<Self> {
        Self::build_with_faults(config, wrap, None).await
    }

    /// Like [`Application::build_with_store`]; in multi-node mode the sequencer
    /// also calls `record_hook` with every record before storing its batch
    /// (tests make it panic).
    pub async fn build_with_faults(
        config: Config,
        wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>,
        record_hook: Option<RecordHook>,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
        let media_spec = media_spec(&config)?;
        let mut shared_pg: Option<Arc<PostgresStore>> = None;
        let (store, tokens, vapid): (Arc<dyn Store>, TokenKeys, VapidKey) = match config
            .database()?
        {
            Database::Sqlite(path) => {
                let sync = config.sqlite_synchronous;
                let store =
                    tokio::task::spawn_blocking(move || SqliteStore::open(&path, sync)).await??;
                let tokens = TokenKeys::load_or_create(&config.data_dir, config.token_ttl_secs)?;
                let vapid = VapidKey::load_or_create(&config.data_dir)?;
                (Arc::new(store), tokens, vapid)
            }
            Database::Postgres(url) => {
                let store = PostgresStore::open(&url, config.database_pool).await?;
                // Nodes share the database, so they share the signing key through it.
                let secret = store
                    .shared_secret("token_key", &TokenKeys::generate_secret())
                    .await
                    .context("loading the token signing key")?;
                // And the Web Push (VAPID) key: a browser's subscription is
                // tied to it, whichever node pushes.
                let vapid = store
                    .shared_secret("vapid_key", &VapidKey::generate_secret())
                    .await
                    .context("loading the VAPID key")?;
                let vapid = VapidKey::from_secret(&vapid).context("the stored VAPID key")?;
                let store = Arc::new(store);
                shared_pg = Some(store.clone());
                (
                    store,
                    TokenKeys::from_secret(&secret, config.token_ttl_secs),
                    vapid,
                )
            }
        };
        let store = wrap(store);
        let metrics = Arc::new(Metrics::new());
        let hub = Arc::new(Hub::new(metrics.clone()));
        let pipeline_stop = CancellationToken::new();
        // Each committed message is offered to the push planner (never waiting).
        let (notifier, committed) = Notifier::channel(config.push_queue, metrics.clone());
        let (bus, pipeline, pipeline_task): (Arc<dyn Bus>, Arc<dyn Pipeline>, _) =
            match (&config.kafka_brokers, shared_pg.clone()) {
                (Some(brokers), Some(pg)) => {
                    let cluster = Cluster::start(
                        ClusterConfig {
                            brokers: brokers.clone(),
                            topic_prefix: config.kafka_topic_prefix.clone(),
                            partitions: config.kafka_partitions,
                            replication: config.kafka_replication,
                            max_batch: config.max_batch,
                            reply_timeout: Duration::from_millis(config.kafka_reply_timeout_ms),
                            fetch_wait_ms: config.kafka_fetch_wait_ms,
                            record_hook,
                            notifier,
                        },
                        pg,
                        hub.clone(),
                        metrics.clone(),
                        pipeline_stop.clone(),
                    )
                    .await
                    .context("joining the cluster (Kafka)")?;
                    (cluster.bus, cluster.pipeline, cluster.task)
                }
                (Some(_), None) => {
                    anyhow::bail!("--kafka-brokers needs --database-url postgres://…")
                }
                (None, _) => {
                    let bus: Arc<dyn Bus> = Arc::new(LocalBus::new(hub.clone()));
                    let (pipeline, task) = LocalPipeline::start(
                        store.clone(),
                        bus.clone(),
                        notifier,
                        metrics.clone(),
                        config.max_batch,
                        pipeline_stop.clone(),
                    );
                    (bus, pipeline as Arc<dyn Pipeline>, task)
                }
            };
        let limits = Arc::new(Limits::new(
            config.rate_limits,
            &config.rates,
            config.max_sockets_per_ip,
            config.max_sockets_per_user,
            metrics.clone(),
        ));
        let accounts = Accounts::new(store.clone(), tokens, limits.clone());
        let push_stop = CancellationToken::new();
        if config.push_subject.is_none() {
            tracing::warn!(
                "no --push-subject: push services are given mailto:postmaster@localhost as the \
                 contact; some (Apple's) refuse it"
            );
        }
        let (push, push_tasks) = Push::start(
            PushConfig {
                subject: config
                    .push_subject
                    .clone()
                    .unwrap_or_else(|| "mailto:postmaster@localhost".into()),
                rules: EndpointRules {
                    allow_http: config.push_allow_http,
                    extra_hosts: config.push_hosts.clone(),
                },
                timing: Timing {
                    idle: config.push_idle_ms as i64,
                    delay: config.push_delay_ms as i64,
                    repeat: config.push_repeat_ms as i64,
                    ..Timing::default()
                },
                hide_text: config.push_hide_text,
                ttl: Duration::from_secs(config.push_ttl_secs.max(1)),
                queue: config.push_queue,
            },
            Arc::new(vapid),
            store.clone(),
            bus.clone(),
            &hub,
            limits.clone(),
            metrics.clone(),
            committed,
            push_stop.clone(),
        )?;
        let matcher_cfg = MatcherConfig {
            window: config.match_window_ms,
            grace: config.match_grace_ms,
            ..MatcherConfig::default()
        };
        // Several nodes share one matcher (in PostgreSQL); one node keeps it in memory.
        let engine: Arc<dyn MatchEngine> = match (&config.kafka_brokers, shared_pg) {
            (Some(_), Some(pg)) => Arc::new(
                SharedMatchEngine::new(matcher_cfg, pg)
                    .await
                    .map_err(|e| anyhow::anyhow!("loading matching state: {e:#}"))?,
            ),
            _ => Arc::new(
                LocalMatchEngine::new(matcher_cfg, store.clone())
                    .await
                    .map_err(|e| anyhow::anyhow!("loading matching state: {e:#}"))?,
            ),
        };
        // Strikes for blocked messages (Rooms) and the cool-down they cause (matching).
        let escalation = Arc::new(Escalation::new(store.clone()));
        let matching = Arc::new(MatchService::new(
            engine,
            bus.clone(),
            store.clone(),
            metrics.clone(),
            Duration::from_millis(config.match_next_interval_ms),
            escalation.clone(),
        ));
        let moderation = Arc::new(Moderation::new(
            store.clone(),
            bus.clone(),
            hub.clone(),
            matching.clone(),
            accounts.user_cache(),
        ));
        escalation.set_banner(Arc::downgrade(&moderation) as std::sync::Weak<dyn AutoBan>);
        // A user's role or ban changed (on any node): forget the cached copy.
        let cache = accounts.user_cache();
        hub.set_user_watcher(Box::new(move |user| cache.forget(user)));
        let store_for_media = store.clone();
        let store_for_profiles = store.clone();
        let accounts_url_key = accounts.url_key();
        let people = People::new(store.clone(), bus.clone(), hub.clone(), limits.clone());
        let bus_for_profiles = bus.clone();
        let rooms = Rooms::new(
            store,
            pipeline,
            bus,
            hub.clone(),
            config.moderation,
            escalation,
            metrics.clone(),
        );
        let media = Arc::new(
            build_media(
                &config,
                &media_spec,
                store_for_media,
                accounts_url_key,
                metrics.clone(),
            )
            .await?,
        );
        let profiles = Profiles::new(
            store_for_profiles,
            media.clone(),
            accounts.user_cache(),
            bus_for_profiles,
            limits.clone(),
            config.moderation,
        );
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let stomp_listener = match config.stomp_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding STOMP listener {addr}"))?,
            ),
            None => None,
        };
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding metrics listener {addr}"))?,
            ),
            None => None,
        };
        let shutdown = CancellationToken::new();
        limits.spawn_cleanup(shutdown.clone());
        let presence_every = Duration::from_millis(config.presence_interval_ms.max(10));
        hub.spawn_presence_flusher(presence_every, shutdown.clone());
        let tick = (config.match_window_ms.min(config.match_grace_ms) / 4).clamp(10, 250);
        matching.spawn_ticker(Duration::from_millis(tick), shutdown.clone());
        media.spawn_cleanup(
            Duration::from_secs(config.media_sweep_secs.max(1)),
            shutdown.clone(),
        );
        let state = Arc::new(AppState::new(
            config, accounts, rooms, matching, moderation, media, people, profiles, push, hub,
            metrics, limits, shutdown,
        ));
        Ok(Application {
            listener,
            stomp_listener,
            metrics_listener,
            state,
            pipeline_stop,
            pipeline_task,
            push_stop,
            push_tasks,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener")
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    pub fn stomp_addr(&self) -> Option<SocketAddr> {
        self.stomp_listener
            .as_ref()
            .map(|l| l.local_addr().expect("bound listener"))
    }

    /// Where `/metrics` is served on its own (`--metrics-listen`).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .map(|l| l.local_addr().expect("bound listener"))
    }

    pub async fn run_until_stopped(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let state = self.state.clone();
        // Three steps, in order: stop accepting; commit every accepted message (so
        // its RECEIPT is queued); then close the connections, which flush first.
        let stop_accepting = CancellationToken::new();
        if let Some(l) = self.stomp_listener {
            tokio::spawn(crate::realtime::tcp::serve(
                l,
                state.clone(),
                stop_accepting.clone(),
            ));
        }
        let cfg = &state.config;
        let options = crate::http::server::Options {
            trusted_proxies: cfg.trusted_proxies.clone().into(),
            max_connections_per_ip: cfg.rate_limits.then_some(cfg.max_http_connections_per_ip),
        };
        if let Some(l) = self.metrics_listener {
            tokio::spawn(crate::http::server::serve(
                l,
                crate::http::metrics_router(state.clone()),
                stop_accepting.clone(),
                Duration::from_secs(1),
                crate::http::server::Options::default(),
            ));
        }
        let router = crate::http::router(state.clone());
        let server = tokio::spawn(crate::http::server::serve(
            self.listener,
            router,
            stop_accepting.clone(),
            Duration::from_secs(3),
            options,
        ));
        stop.await;
        tracing::info!("shutting down");
        stop_accepting.cancel();
        if let Err(e) = server.await {
            tracing::warn!(error = %e, "HTTP server task failed");
        }
        self.pipeline_stop.cancel();
        if tokio::time::timeout(Duration::from_secs(5), self.pipeline_task)
            .await
            .is_err()
        {
            anyhow::bail!("message pipeline did not drain within 5 s");
        }
        self.push_stop.cancel();
        let PushTasks {
            planner,
            delivery,
            renew,
        } = self.push_tasks;
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            let _ = tokio::join!(planner, delivery, renew);
        })
        .await;
        state.shutdown.cancel();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        while state.metrics.connections.get() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// The store `--media-store` names (`<data_dir>/media` by default). Several
/// nodes (`--kafka-brokers`) need a store they all see: a local directory is
/// refused there, since a file uploaded on one node would be missing on the
/// others — unless `--media-store-shared` says every node mounts it.
fn media_spec(config: &Config) -> anyhow::Result<MediaStoreSpec> {
    let spec = match &config.media_store {
        Some(s) => s
            .parse::<MediaStoreSpec>()
            .map_err(|e| anyhow::anyhow!("--media-store: {e}"))?,
        None => MediaStoreSpec::Local {
            dir: config.data_dir.join("media"),
        },
    };
    let local = matches!(spec, MediaStoreSpec::Local { .. });
    if config.kafka_brokers.is_some() && local && !config.media_store_shared {
        anyhow::bail!(
            "cluster mode (--kafka-brokers) needs a media store every node shares: a file \
             uploaded to one node's local directory would be missing on the others. \
             Use --media-store s3://BUCKET?endpoint=… (any S3-compatible server), or \
             --media-store file://DIR --media-store-shared if DIR is storage every node \
             mounts (NFS, a shared volume)"
        );
    }
    Ok(spec)
}

/// The media service over the store `spec` names.
async fn build_media(
    config: &Config,
    spec: &MediaStoreSpec,
    store: Arc<dyn Store>,
    url_key: [u8; 32],
    metrics: Arc<Metrics>,
) -> anyhow::Result<MediaService> {
    let objects = crate::media::open(spec)
        .await
        .map_err(|e| anyhow::anyhow!("opening the media store: {e}"))?;
    Ok(MediaService::new(
        store,
        objects,
        MediaLimits {
            max_upload_bytes: config.max_upload_bytes,
            quota_bytes: config.media_quota_bytes,
            guest_quota_bytes: config.guest_media_quota_bytes,
            grace: Duration::from_secs(config.media_grace_secs),
        },
        UrlSigner::new(url_key),
        config.moderation,
        metrics,
    ))
}
