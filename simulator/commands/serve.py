"""``poisonlab serve``: the defense service on a real feedback topic.

Security settings reach kafka-python from, in increasing priority: a TOML file
(``--kafka-config``, keys of :class:`stream.kafka.KafkaSettings`, e.g.
``security_protocol = "SASL_SSL"``, ``sasl_mechanism = "SCRAM-SHA-512"``,
``sasl_plain_username``, ``sasl_plain_password``, ``ssl_cafile``), the
environment variables ``POISONLAB_KAFKA_SASL_USERNAME``,
``POISONLAB_KAFKA_SASL_PASSWORD`` and ``POISONLAB_KAFKA_SSL_PASSWORD``, and the
flags below.  Passwords are never accepted as flags and never logged.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tomllib
from pathlib import Path

from rich.console import Console

from simulator.commands.common import DEFAULT_DB, UsageError, masked, parse_chain
from simulator.config import load_scenario

ENV_SECRETS = {"POISONLAB_KAFKA_SASL_USERNAME": "sasl_plain_username",
               "POISONLAB_KAFKA_SASL_PASSWORD": "sasl_plain_password",
               "POISONLAB_KAFKA_SSL_PASSWORD": "ssl_password"}


def register(sub) -> None:
    parser = sub.add_parser("serve", help="run the defense service: feedback topic in, labels out")
    parser.add_argument("scenario", nargs="?", help="scenario TOML file whose [defense] table configures the chain")
    parser.add_argument("--broker", required=True, help="kafka://HOST:PORT[,HOST:PORT...]")
    parser.add_argument("--db", default=DEFAULT_DB, help=f"service state database URL (default {DEFAULT_DB})")
    parser.add_argument("--defense", help="defense chain, comma-separated (default: the scenario's)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a scenario key, e.g. defense.reputation.quorum=0.8 (repeatable)")
    parser.add_argument("--group", default="poisonlab-defense",
                        help="consumer group, also the namespace of the service's rows (default poisonlab-defense)")
    parser.add_argument("--topic-prefix", default="", help="prefix of the topic and group names on the broker")
    parser.add_argument("--partitions", type=int, help="partitions of the feedback topic if it must be created")
    parser.add_argument("--tick-seconds", type=float, default=3600.0,
                        help="event-time seconds per tick (windows and account ages are in ticks; default 3600)")
    parser.add_argument("--max-records", type=int, default=5000,
                        help="most records per poll and database transaction (default 5000)")
    parser.add_argument("--reviews-topic", metavar="NAME",
                        help="also read provider reviews (confirmed true labels) from this topic, e.g. reviews, "
                             "and feed them to the chain's observe_reviews; keeps the votes of recent windows "
                             "in the database for that (default: reviews are not read)")
    parser.add_argument("--idle-close", type=float, default=5.0,
                        help="close every pending window after this many idle seconds once caught up (0: never)")
    parser.add_argument("--exit-when-idle", action="store_true",
                        help="exit once everything was read, decided and published")
    parser.add_argument("--kafka-config", metavar="TOML", help="file of Kafka client settings (security...)")
    parser.add_argument("--security-protocol", choices=["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"])
    parser.add_argument("--sasl-mechanism", help="PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, ...")
    parser.add_argument("--ssl-cafile", help="CA bundle to verify the broker")
    parser.add_argument("--ssl-certfile", help="client certificate (mutual TLS)")
    parser.add_argument("--ssl-keyfile", help="client key (mutual TLS)")
    parser.add_argument("--session-timeout-ms", type=int, help="consumer group session timeout")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.set_defaults(handler=handle)


def kafka_settings(args: argparse.Namespace, environ=os.environ):
    """Settings from the config file, the environment and the flags (in that order)."""
    from stream.kafka import KafkaSettings

    data: dict = {}
    if args.kafka_config:
        path = Path(args.kafka_config)
        if not path.is_file():
            raise UsageError(f"--kafka-config {path}: file not found")
        try:
            data.update(tomllib.loads(path.read_text(encoding="utf-8")))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"--kafka-config {path}: not valid TOML ({exc})") from None
    for var, key in ENV_SECRETS.items():
        if environ.get(var):
            data[key] = environ[var]
    flags = {"security_protocol": args.security_protocol, "sasl_mechanism": args.sasl_mechanism,
             "ssl_cafile": args.ssl_cafile, "ssl_certfile": args.ssl_certfile, "ssl_keyfile": args.ssl_keyfile,
             "session_timeout_ms": args.session_timeout_ms}
    data.update({k: v for k, v in flags.items() if v is not None})
    if args.session_timeout_ms:
        data.setdefault("heartbeat_interval_ms", max(100, args.session_timeout_ms // 5))
    try:
        return KafkaSettings.from_url(args.broker, **data)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"--broker/--kafka-config: {exc}") from None


def _missing_inputs(chain) -> str | None:
    """What the service cannot give a member of ``chain`` (one line), or None: never run a
    weaker chain than asked without a word."""
    needs = chain.needs()
    for need, what in (("model", "a shadow model (warm-up mail and a validation set)"),
                       ("gold", "the gold topic")):
        if need in needs:
            members = [m.name for m in chain.members if getattr(m, f"needs_{need}", False)]
            return (f"{', '.join(members)} need{'s' if len(members) == 1 else ''} {what}, which serve does not "
                    "read yet; run the chain in the lab (poisonlab run/compare) or drop these members")
    return None


def handle(args: argparse.Namespace, console: Console) -> int:
    from stream.codecs import pipeline_codecs
    from stream.kafka import KafkaTransport
    from stream.service import DefenseService, ServiceConfig
    from stream.service_state import ServiceStore, StateError
    from stream.transport import TransportError

    from defenses.registry import build_chain

    settings = kafka_settings(args)
    overrides = list(args.overrides)
    if args.defense:
        overrides.append("defense.chain=" + repr(parse_chain(args.defense)))
    scenario = load_scenario(args.scenario, overrides)
    chain = build_chain(scenario.defense)
    missing = _missing_inputs(chain)
    if missing:
        raise UsageError(f"--defense {chain.name}: {missing}")
    for name, value in (("--max-records", args.max_records), ("--tick-seconds", args.tick_seconds)):
        if value <= 0:
            raise UsageError(f"{name} must be positive, got {value}")
    if args.reviews_topic is not None:
        from stream.transport import TransportError, check_topic_name

        try:
            check_topic_name(args.reviews_topic)
        except (TransportError, TypeError) as exc:
            raise UsageError(f"--reviews-topic: {exc}") from None
        if args.reviews_topic == "feedback":
            raise UsageError("--reviews-topic: reviews need their own topic, not feedback")
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    try:
        store = ServiceStore(args.db, args.group)
    except StateError as exc:
        raise UsageError(f"--db {masked(args.db)}: {exc}") from None
    try:
        transport = KafkaTransport(settings, pipeline_codecs(), topic_prefix=args.topic_prefix)
    except TransportError as exc:
        store.close()
        raise UsageError(f"--broker {args.broker}: {exc}") from None
    config = ServiceConfig(group=args.group, window=float(scenario.defense.window_ticks),
                           tick_seconds=args.tick_seconds, max_records=args.max_records,
                           idle_close_s=args.idle_close, exit_when_idle=args.exit_when_idle,
                           partitions=args.partitions, reviews_topic=args.reviews_topic or None)
    service = DefenseService(transport, store, chain, config)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    log = logging.getLogger("poisonlab.serve")
    log.info("serving defense %s on %s (group %s, state in %s)", service.chain.name,
             settings.bootstrap_servers, args.group, masked(args.db))
    try:
        stats = service.run(should_stop=lambda: bool(stopping))
    finally:
        transport.close()
        store.close()
    log.info("stopped: %d records, %d votes, %d duplicates skipped, %d dead letters, %d labels",
             stats.records, stats.votes, stats.duplicates, stats.deadletters, stats.labels)
    return 0
