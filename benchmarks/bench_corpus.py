"""River's own accuracy on a real corpus, the yardstick for the simulator's clean filter.

Parses the corpus with the simulator's own loader (the same mail the simulator
sees: ``Email.text`` = subject, body, sender domain), then measures, with a bare
River ``BagOfWords | MultinomialNB`` pipeline and no simulator code in the loop:

- **progressive accuracy** over the whole corpus in a seeded random order
  (predict each message, then learn it: River's ``progressive_val_score`` protocol);
- **split accuracy**: learn the scenario's warm-up mail (``model.warmup_emails`` of the
  warm-up split, as the simulator does before tick 0), then score the evaluation split
  without learning: what the simulator's warm clean filter should reach at tick 0.

Also times the parse (cold, wall and CPU seconds, then from the per-process cache).

    python benchmarks/bench_corpus.py [scenarios/spamassassin.toml] [--set key=value ...] [--orders 5] [--out F.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from river import compose, feature_extraction, metrics, naive_bayes

from simulator.config import load_scenario, source_kind_path
from simulator.email import Email
from simulator.engine import Simulation
from simulator.sources.loading import load_corpus

DEFAULT_SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "spamassassin.toml"


def pipeline() -> compose.Pipeline:
    return compose.Pipeline(feature_extraction.BagOfWords(lowercase=True, strip_accents=False),
                            naive_bayes.MultinomialNB(alpha=1.0))


def progressive_accuracy(emails: list[Email]) -> float:
    """Predict then learn each email in turn; the share predicted right."""
    model, accuracy = pipeline(), metrics.Accuracy()
    for email in emails:
        predicted = model.predict_one(email.text)
        if predicted is not None:
            accuracy.update(email.is_spam, predicted)
        model.learn_one(email.text, email.is_spam)
    return accuracy.get()


def split_accuracy(train: list[Email], test: list[Email]) -> float:
    model, accuracy = pipeline(), metrics.Accuracy()
    for email in train:
        model.learn_one(email.text, email.is_spam)
    for email in test:
        accuracy.update(email.is_spam, model.predict_one(email.text))
    return accuracy.get()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", nargs="?", default=str(DEFAULT_SCENARIO))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--orders", type=int, default=5, help="random orders for the progressive accuracy")
    parser.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    scenario = load_scenario(args.scenario, args.overrides)
    kind, path = source_kind_path(scenario.mail.source)
    if path is None:
        raise SystemExit("bench_corpus: the scenario's mail.source must be a real corpus")

    started, cpu_started = time.perf_counter(), time.process_time()
    corpus = load_corpus(kind, path, scenario.mail.text_column, scenario.mail.label_column)
    parse_s, parse_cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    started = time.perf_counter()
    load_corpus(kind, path, scenario.mail.text_column, scenario.mail.label_column)
    cached_s = time.perf_counter() - started

    emails = [Email(m.key, m.sender, m.subject, m.body, "spam" if m.is_spam else "personal")
              for m in corpus.messages]
    progressive = []
    for order_seed in range(args.orders):
        order = np.random.default_rng(order_seed).permutation(len(emails))
        progressive.append(progressive_accuracy([emails[i] for i in order.tolist()]))

    plan = Simulation(scenario).source.plan          # the very splits a run of this scenario uses
    as_email = [Email(m.key, m.sender, m.subject, m.body, c) for m, c in zip(corpus.messages, plan.categories)]
    warm = [as_email[i] for i in plan.warmup[:scenario.model.warmup_emails].tolist()]
    held_out = [as_email[i] for i in plan.evaluation.tolist()]
    result = {
        "corpus": str(path), "messages": len(corpus), "spam": corpus.n_spam,
        "charset_errors": corpus.charset_errors,
        "parse_s": round(parse_s, 2), "parse_cpu_s": round(parse_cpu_s, 2), "parse_cached_s": round(cached_s, 6),
        "river_progressive_accuracy": {"mean": round(float(np.mean(progressive)), 4),
                                       "min": round(float(np.min(progressive)), 4),
                                       "max": round(float(np.max(progressive)), 4), "orders": args.orders},
        "river_warmup_then_eval_accuracy": round(split_accuracy(warm, held_out), 4),
        "warmup_emails": len(warm), "evaluation_emails": len(held_out),
        "majority_class_accuracy": round(1 - corpus.n_spam / len(corpus), 4),
    }
    print(json.dumps(result, indent=2))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
