"""Adaptive redundancy: how many volunteers a panorama needs, given the answers so far.

Amnesty asked 3 volunteers per panorama and kept the median (methodology note, section 1.3).
Many panoramas show no camera, and their first two answers already agree on 0; a few are so
hard that all three answers differ. :func:`adaptive_target` is the rule the platform applies
after each counted submission; :func:`simulate_adaptive` measures what a rule saves and costs on
the synthetic city (truth known); :func:`savings_on_agreements` says what it would have saved on
a real agreement distribution (Amnesty's Brooklyn file).

Why stopping at two equal answers costs nothing with k = 3: the median of ``{v, v, x}`` is
``v`` whatever the third answer ``x``, so the third volunteer cannot change that category's
median. Asking a 4th and 5th volunteer when all disagree changes the median (it can only help
if extra answers are informative) and costs tasks.

``stop_posterior`` goes further: a count model fitted on the project's pilot and gold answers
(:func:`fit_count_model`) says what the answers still to come would change
(:func:`stop_cost`), so a panorama may end after one answer. With the detector's machine tags
as extra evidence it saves over 25 % of the tasks with no more error under all three synthetic
error models (docs/quality.md, Goal 3); from the answers alone it does not.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from camcensus._errors import ContractError, Ledger, OptionError
from camcensus.quality.count_model import (
    DETECTOR_FALSE_TAGS,
    DETECTOR_RECALL,
    CountModel,
    _whole_counts,
    count_likelihood,
    fit_count_model,
    stop_cost,
)
from camcensus.simulate import ErrorModel, simulate_city

__all__ = [
    "DETECTOR_FALSE_TAGS",
    "DETECTOR_RECALL",
    "POSTERIOR_TOLERANCE",
    "RULES",
    "AnswerPool",
    "CountModel",
    "adaptive_target",
    "count_likelihood",
    "draw_answers",
    "fit_count_model",
    "margin_needed",
    "run_rule",
    "savings_on_agreements",
    "simulate_adaptive",
    "stop_cost",
]

#: Rules :func:`adaptive_target` knows. ``fixed``: always k. ``stop_unanimous_zero``: two
#: answers of 0 cameras end the panorama. ``stop_unanimous``: two equal answers (any count) end
#: it. ``extend_disagreement``: when k answers all differ, ask one more volunteer, up to
#: ``k_max``. ``both``: ``stop_unanimous_zero`` and ``extend_disagreement``.
#: ``stop_agree_or_low``: two answers end the panorama when they agree, or when neither has more
#: than one camera (0 vs 1 included: the median of the two is then 0.5). Measured on the
#: synthetic city (benchmarks/bench_adaptive.py): it saves more than 25 % of the tasks with no
#: more error under the default and miss-prone volunteers, but not under over-counting ones
#: (look-alikes), where only exact agreement on every category keeps the error unchanged.
#: ``stop_posterior``: two equal answers end the panorama; otherwise it ends as soon as
#: :func:`stop_cost` (the expected increase of the panorama's absolute count error from stopping
#: now rather than at k answers, under a :class:`CountModel` fitted on the project's own
#: answers) is at most ``tolerance``.
RULES: tuple[str, ...] = (
    "fixed",
    "stop_unanimous_zero",
    "stop_unanimous",
    "extend_disagreement",
    "both",
    "stop_agree_or_low",
    "stop_posterior",
)
#: Default ``tolerance`` of ``stop_posterior`` (cameras of expected absolute error per
#: panorama), tuned on seeds 0-19 of the synthetic city (the tuning mode of the benchmark
#: script bench_adaptive.py) and evaluated on seeds 20-219 (held out); the tuned value of
#: ``stop_posterior`` with the
#: detector's machine tags as evidence (answers alone met no tolerance on the tuning seeds).
POSTERIOR_TOLERANCE = 0.05
_POSTERIOR = {"stop_posterior"}
_CLASS_RULES = tuple(r for r in RULES if r not in _POSTERIOR)
_STOP_ZERO = {"stop_unanimous_zero", "both"}
_STOP_ANY = {"stop_unanimous"}
_STOP_LOW = {"stop_agree_or_low"}
_EXTEND = {"extend_disagreement", "both"}
_ATTACH = ("attached_street", "attached_building", "attached_unknown")
_AGREEMENT = ("Unanimous", "2 vs 1", "All disagree")


def _check(rule: str, k: int, k_max: int) -> None:
    if rule not in RULES:
        raise OptionError(f"rule={rule!r}: expected one of {', '.join(RULES)}.")
    if k < 1:
        raise OptionError(f"k={k}: expected at least 1 volunteer per panorama (Amnesty: 3).")
    if k_max < k:
        raise OptionError(f"k_max={k_max} is below k={k}: expected k_max >= k (e.g. 5).")


def adaptive_target(
    answers: Sequence[int] | Sequence[Sequence[int]],
    *,
    k: int = 3,
    rule: str = "stop_unanimous_zero",
    k_max: int = 5,
    model: CountModel | None = None,
    tolerance: float = POSTERIOR_TOLERANCE,
    machine_tags: int | None = None,
) -> int:
    """Return how many answers a panorama needs in total, given the counts answered so far.

    A pure function: the platform calls it after each counted submission with the panorama's
    ``n_cameras`` answers so far (in any order) and stores the result as the panorama's target.

    Parameters
    ----------
    answers
        The camera counts given so far for one panorama (non-negative integers), or, to decide
        on every category, one tuple of counts per answer (e.g. ``(street, building,
        unknown)``): two answers then agree only when every count agrees, which keeps every
        per-category median of k = 3 unchanged. The counts of a tuple must split the cameras
        (their sum is the answer's number of cameras; ``stop_agree_or_low`` uses it).
    k
        The project's number of volunteers per panorama.
    rule
        One of :data:`RULES`.
    k_max
        Most volunteers ``extend_disagreement`` may ask for.
    model
        ``stop_posterior`` only: the :class:`CountModel` fitted on the project's pilot and
        gold answers (:func:`fit_count_model`). Without one (the pilot is still being
        collected) the rule asks for k answers, as ``fixed``. With tuples of category
        counts, two answers end the panorama when every count agrees (lossless), and the
        model weighs their sums.
    tolerance
        ``stop_posterior`` only: the largest :func:`stop_cost` (cameras of expected absolute
        error) at which the panorama stops.
    machine_tags
        ``stop_posterior`` only: the detector's number of tags on the panorama, as extra
        evidence (None: not used).

    Returns
    -------
    int
        The number of answers the panorama needs; never fewer than ``len(answers)``. The
        panorama is complete when it has that many.

    Examples
    --------
    >>> adaptive_target([0, 0], rule="stop_unanimous_zero")
    2
    >>> adaptive_target([0, 1], rule="stop_unanimous_zero")
    3
    >>> adaptive_target([0, 1, 2], rule="extend_disagreement")
    4
    >>> adaptive_target([0, 1], rule="stop_agree_or_low")
    2
    """
    _check(rule, k, k_max)
    values = [_answer(a, answers) for a in answers]
    n = len(values)
    target = k
    distinct = len(set(values))
    stops = (rule in _STOP_ZERO and n >= 2 and not any(values[0])) or rule in _STOP_ANY
    if n >= 2 and distinct == 1 and stops:
        target = min(k, n)
    if rule in _STOP_LOW and n >= 2 and (distinct == 1 or all(sum(v) <= 1 for v in values)):
        target = min(k, n)
    if rule in _EXTEND and n >= max(k, 2) and distinct == n and n < k_max:
        target = n + 1
    if rule in _POSTERIOR and model is not None:
        if n >= 2 and distinct == 1:
            target = min(k, n)
        elif 1 <= n < k:
            totals = [sum(v) for v in values]
            if stop_cost(totals, model, k=k, machine_tags=machine_tags) <= tolerance:
                target = n
    return max(target, n)


def _answer(a: object, answers: object) -> tuple[int, ...]:
    """Return one answer as a tuple of non-negative whole counts (or raise)."""
    parts: list[Any] = list(a) if isinstance(a, (Sequence, np.ndarray)) else [a]
    out = []
    for x in parts:
        try:
            value = int(x)
            ok = value >= 0 and float(x) == value
        except (TypeError, ValueError):
            ok = False
        if not ok or not parts:
            raise OptionError(
                f"answers={answers!r}: expected the non-negative whole camera counts given so "
                "far for one panorama (one int, or one tuple of category counts, per answer)."
            )
        out.append(value)
    return tuple(out)


def margin_needed(agree: int, disagree: int, *, margin: int = 2, cap: int = 5) -> int:
    """Return how many more validations a label needs at least (Project Sidewalk's rule).

    A label is settled when ``|agree - disagree| >= margin`` or when it has ``cap`` validations.

    Parameters
    ----------
    agree, disagree
        Validations so far that agree / disagree with the label.
    margin
        Lead one side needs (Project Sidewalk: 2).
    cap
        Most validations a label gets.

    Returns
    -------
    int
        0 when settled; otherwise the fewest further validations that could settle it (all on
        the leading side), never past ``cap``.

    Examples
    --------
    >>> margin_needed(1, 0)
    1
    >>> margin_needed(2, 1)
    1
    >>> margin_needed(3, 1)
    0
    """
    if agree < 0 or disagree < 0:
        raise OptionError(f"agree={agree}, disagree={disagree}: expected counts >= 0.")
    if margin < 1 or cap < 1:
        raise OptionError(f"margin={margin}, cap={cap}: expected both >= 1 (Sidewalk: 2 and 5).")
    done = agree + disagree
    gap = abs(agree - disagree)
    if gap >= margin or done >= cap:
        return 0
    return min(margin - gap, cap - done)


@dataclass(frozen=True)
class AnswerPool:
    """Up to ``k_max`` answers per panorama, in the order volunteers would give them.

    ``answers[p, j, c]`` is the ``j``-th volunteer's count of attachment class ``c``
    (street, building, unknown) on panorama ``p``; ``truth[p, c]`` the true counts.
    """

    truth: np.ndarray
    answers: np.ndarray


def draw_answers(
    truth: np.ndarray,
    errors: ErrorModel,
    *,
    n_answers: int = 5,
    n_volunteers: int = 80,
    seed: int = 0,
) -> AnswerPool:
    """Draw ``n_answers`` volunteers' counts per panorama from the synthetic city's error model.

    The same semantics as :func:`camcensus.simulate.simulate_city`: each volunteer of a pool of
    ``n_volunteers`` has a miss probability drawn from Beta with mean ``errors.miss_mean``;
    each panorama gets distinct volunteers in random order; a seen camera keeps its attachment
    with ``p_attach_correct`` (else one of the two others, equally likely); each volunteer adds
    Poisson(``false_positive_rate``) look-alikes, on a pole / building / unknown with
    probabilities 0.2 / 0.7 / 0.1.

    Parameters
    ----------
    truth
        Panoramas × 3 true counts (street, building, unknown).
    errors
        The volunteers' error model.
    n_answers
        Answers drawn per panorama (the most any rule may use).
    n_volunteers
        Size of the volunteer pool (at least ``n_answers``).
    seed
        Seed of every draw.
    """
    truth = np.asarray(truth, dtype="int64")
    if truth.ndim != 2 or truth.shape[1] != 3 or (truth < 0).any():
        raise OptionError("truth: expected a panoramas × 3 array of non-negative counts.")
    if n_volunteers < n_answers:
        raise OptionError(f"n_volunteers={n_volunteers} is below n_answers={n_answers}.")
    rng = np.random.default_rng(seed)
    a = errors.miss_mean * errors.miss_concentration
    miss_pool = rng.beta(a, errors.miss_concentration - a, n_volunteers)
    p = len(truth)
    vols = np.argsort(rng.random((p, n_volunteers)), axis=1)[:, :n_answers]
    miss = miss_pool[vols]
    seen = rng.binomial(truth[:, None, :], (1.0 - miss)[:, :, None])
    wrong = rng.binomial(seen, 1.0 - errors.p_attach_correct)
    plus_one = rng.binomial(wrong, 0.5)
    plus_two = wrong - plus_one
    att = seen - wrong + np.roll(plus_one, 1, axis=2) + np.roll(plus_two, 2, axis=2)
    fp = rng.poisson(errors.false_positive_rate, (p, n_answers))
    att = att + rng.multinomial(fp, [0.2, 0.7, 0.1])
    return AnswerPool(truth=truth, answers=att.astype("int64"))


def run_rule(
    answers: np.ndarray,
    *,
    rule: str,
    k: int = 3,
    k_max: int = 5,
    model: CountModel | None = None,
    tolerance: float = POSTERIOR_TOLERANCE,
    machine_tags: np.ndarray | None = None,
) -> np.ndarray:
    """Return how many answers each panorama gets under ``rule`` (answers given in order).

    Does what the platform does: hand out tasks until the panorama has its target, calling
    :func:`adaptive_target` after each answer.

    Parameters
    ----------
    answers
        Panoramas × ``k_max`` camera counts, in the order the answers arrive; or panoramas ×
        ``k_max`` × categories to decide on every category's count.
    model, tolerance
        Passed to :func:`adaptive_target` (``stop_posterior``).
    machine_tags
        Per panorama, the detector's number of tags (``stop_posterior``), or None.
    """
    _check(rule, k, k_max)
    if machine_tags is not None and len(machine_tags) != len(answers):
        raise OptionError(f"machine_tags has {len(machine_tags)} rows; answers {len(answers)}.")
    if answers.shape[1] < k_max:
        raise OptionError(f"answers has {answers.shape[1]} answers per panorama; need {k_max}.")
    rows = answers.tolist()
    if answers.ndim == 3:
        rows = [[tuple(a) for a in row] for row in rows]
    used = np.empty(len(answers), dtype="int64")
    # Panoramas share few distinct answer sequences: ask the rule once per sequence.
    seen: dict[tuple[Any, Any], int] = {}
    for i, row in enumerate(rows):
        n, target = 0, k
        tags = None if machine_tags is None else int(machine_tags[i])
        while n < target:
            n += 1
            prefix = tuple(row[:n])
            key = (prefix, tags)
            if key not in seen:
                seen[key] = adaptive_target(
                    prefix,
                    k=k,
                    rule=rule,
                    k_max=k_max,
                    model=model,
                    tolerance=tolerance,
                    machine_tags=tags,
                )
            target = seen[key]
        used[i] = n
    return used


def _medians(answers: np.ndarray, used: np.ndarray) -> np.ndarray:
    """Per-panorama median of the first ``used`` answers, per class (panoramas × classes)."""
    out = np.zeros((answers.shape[0], answers.shape[2]))
    for n in np.unique(used):
        rows = used == n
        out[rows] = np.median(answers[rows, :n, :], axis=1)
    return out


def simulate_adaptive(
    seed: int = 0,
    errors: ErrorModel | None = None,
    *,
    rules: Sequence[str] = RULES,
    k: int = 3,
    k_max: int = 5,
    decide_on: str | Sequence[str] = "n_cameras",
    truth: np.ndarray | None = None,
    nx: int = 40,
    ny: int = 40,
    pilot: int = 100,
    gold: int = 75,
    tolerances: Sequence[float] = (POSTERIOR_TOLERANCE,),
    detector: bool = False,
    machine_tags: np.ndarray | None = None,
    answer_seed: int | None = None,
) -> pd.DataFrame:
    """Measure each rule's volunteer tasks and error on one synthetic city.

    The city (:func:`camcensus.simulate.simulate_city`, seed ``seed``) gives the true counts per
    panorama; :func:`draw_answers` draws ``k_max`` answers per panorama in random order from
    the same error model; every rule sees the same answers (a paired comparison). The total is
    Amnesty's: the sum over panoramas of the per-category medians (street + building +
    unknown, methodology section 1.5).

    Parameters
    ----------
    seed
        Seed of the city and (unless ``answer_seed``) of the answers, the pilot and the gold.
    errors
        Volunteer error model (default :class:`~camcensus.simulate.ErrorModel`).
    rules, k, k_max
        Rules to compare (:data:`RULES`), the project's k and the most answers per panorama.
    decide_on
        ``"n_cameras"``: the rule sees each answer's total (what the platform passes);
        ``"categories"``: it sees (street, building, unknown) per answer; or both (a list).
    truth
        Panoramas × (street, building, unknown) true counts; default: those of
        ``simulate_city(seed, nx=nx, ny=ny)`` (the truth does not depend on the error model,
        so a benchmark may simulate it once per seed and pass it for every model).
    nx, ny
        Size of the city's grid.
    pilot
        ``stop_posterior``: this many panoramas (drawn at random) get k answers first and the
        :class:`CountModel` is fitted on them by EM (no truth used); their tasks count.
    gold
        ``stop_posterior``: this many gold panoramas (drawn at random; their true count known,
        as the platform's gold tasks) each answered by 2 more volunteers (the 4th and 5th
        answers drawn, which ``stop_posterior`` never uses otherwise), fitted with the pilot;
        the 2 gold tasks per gold panorama count as volunteer tasks.
    tolerances
        ``stop_posterior``: the tolerances to run (one row each).
    detector
        Also run ``stop_posterior`` with simulated machine tags as extra evidence (rule
        ``stop_posterior+detector``): per panorama Binomial(T, :data:`DETECTOR_RECALL`) +
        Poisson(:data:`DETECTOR_FALSE_TAGS`) tags — simulated from the detector's measured
        rates, not the detector run on the city. The detector's recall and false-tag rate in
        :func:`stop_cost` are fitted with the volunteers' on the pilot and gold panoramas'
        tags (:func:`fit_count_model`), as the platform would.
    machine_tags
        The detector's real number of tags per panorama (a detector run on the city's
        rendered panoramas, ``benchmarks/detector_tags.py``) instead of simulated ones;
        implies ``detector``.
    answer_seed
        Seed of the answers, the pilot and the gold (default ``seed``): several draws of
        volunteers on one city.

    Returns
    -------
    pandas.DataFrame
        One row per rule (and ``decide_on``, and tolerance): ``rule, decide_on, tolerance,
        seed, panoramas, tasks, tasks_fixed, tasks_saved_pct, total_true, total_estimate,
        total_error, total_abs_error_pct, public_true, public_estimate, public_abs_error_pct,
        panorama_mae, panorama_mae_fixed, panorama_mae_pct, panorama_mae_pct_fixed`` (the
        ``_pct`` MAE is ``100 * sum |panorama error| / true total``, the per-panorama
        counterpart of ``total_abs_error_pct``).
    """
    errors = errors or ErrorModel()
    modes = [decide_on] if isinstance(decide_on, str) else list(decide_on)
    for mode in modes:
        if mode not in ("n_cameras", "categories"):
            raise OptionError(f"decide_on={mode!r}: expected 'n_cameras' or 'categories'.")
    if truth is None:
        city = simulate_city(seed, errors=errors, nx=nx, ny=ny)
        truth = city.truth[list(_ATTACH)].to_numpy(dtype="int64")
    truth = np.asarray(truth, dtype="int64")
    a_seed = seed if answer_seed is None else answer_seed
    pool = draw_answers(truth, errors, n_answers=k_max, seed=a_seed + 1_000_003)
    total_true = float(truth.sum())
    public_true = float(truth[:, 0].sum())
    true_per_pano = truth.sum(axis=1)
    fixed_used = np.full(len(truth), k)
    fixed_med = _medians(pool.answers, fixed_used)
    mae_fixed = float(np.abs(fixed_med.sum(axis=1) - true_per_pano).mean())
    rng = np.random.default_rng(a_seed + 2_000_029)
    in_pilot = np.zeros(len(truth), dtype=bool)
    in_pilot[rng.choice(len(truth), min(pilot, len(truth)), replace=False)] = True
    # Drawn even when real tags replace them: the gold panoramas, drawn next from the same
    # stream, stay the same, so runs with simulated and real tags are paired.
    tags = rng.binomial(true_per_pano, DETECTOR_RECALL) + rng.poisson(
        DETECTOR_FALSE_TAGS, len(truth)
    )
    if machine_tags is not None:
        tags = _whole_counts(machine_tags, "machine_tags", 1)
        if len(tags) != len(truth) or (tags < 0).any():
            raise OptionError(
                f"machine_tags: found {len(tags)} values ({int((tags < 0).sum())} negative); "
                f"expected one tag count per panorama of the city ({len(truth)})."
            )
        detector = True
    runs: list[tuple[str, str, float, np.ndarray | None]] = []
    for mode, rule in itertools.product(modes, rules):
        if rule not in _POSTERIOR:
            runs.append((mode, rule, np.nan, None))
            continue
        for tol in tolerances:
            runs.append((mode, rule, tol, None))
            if detector:
                runs.append((mode, rule + "+detector", tol, tags))
    model = model_det = None
    if any(r[1].startswith("stop_posterior") for r in runs):
        in_gold = np.zeros(len(truth), dtype=bool)
        in_gold[rng.choice(len(truth), min(gold, len(truth)), replace=False)] = True
        fit_rows = np.full((int(in_pilot.sum() + in_gold.sum()), max(k, 2), 3), -1)
        fit_rows[: in_pilot.sum(), :k] = pool.answers[in_pilot, :k]
        fit_rows[in_pilot.sum() :, :2] = pool.answers[in_gold, 3:5]
        known = np.concatenate([np.full(in_pilot.sum(), -1), truth[in_gold].sum(axis=1)])
        totals = np.where(fit_rows[:, :, 0] >= 0, fit_rows.sum(axis=2), -1)
        model = fit_count_model(totals, truth=known)
        if detector:
            fit_tags = np.concatenate([tags[in_pilot], tags[in_gold]])
            model_det = fit_count_model(totals, truth=known, machine_tags=fit_tags)
    rows = []
    for mode, rule, tol, rule_tags in runs:
        seen_by_rule = pool.answers.sum(axis=2) if mode == "n_cameras" else pool.answers
        if rule.startswith("stop_posterior"):
            used = np.full(len(truth), k)
            used[~in_pilot] = run_rule(
                seen_by_rule[~in_pilot],
                rule="stop_posterior",
                k=k,
                k_max=k_max,
                model=model if rule_tags is None else model_det,
                tolerance=tol,
                machine_tags=None if rule_tags is None else rule_tags[~in_pilot],
            )
            gold_tasks = 2 * min(gold, len(truth))
        else:
            used = run_rule(seen_by_rule, rule=rule, k=k, k_max=k_max)
            gold_tasks = 0
        med = _medians(pool.answers, used)
        total = float(med.sum())
        public = float(med[:, 0].sum())
        rows.append(
            {
                "rule": rule,
                "decide_on": mode,
                "tolerance": tol,
                "seed": seed,
                "panoramas": len(truth),
                "tasks": int(used.sum()) + gold_tasks,
                "tasks_fixed": int(k * len(truth)),
                "tasks_saved_pct": 100.0 * (1.0 - (used.sum() + gold_tasks) / (k * len(truth))),
                "total_true": total_true,
                "total_estimate": total,
                "total_error": total - total_true,
                "total_abs_error_pct": 100.0 * abs(total - total_true) / total_true,
                "public_true": public_true,
                "public_estimate": public,
                "public_abs_error_pct": 100.0 * abs(public - public_true) / public_true,
                "panorama_mae": float(np.abs(med.sum(axis=1) - true_per_pano).mean()),
                "panorama_mae_fixed": mae_fixed,
                "panorama_mae_pct": 100.0
                * float(np.abs(med.sum(axis=1) - true_per_pano).sum())
                / total_true,
                "panorama_mae_pct_fixed": 100.0 * mae_fixed * len(truth) / total_true,
            }
        )
    return pd.DataFrame(rows)


def savings_on_agreements(
    counts: pd.DataFrame,
    *,
    rules: Sequence[str] = _CLASS_RULES,
    category: str = "n_cameras",
    ledger: Ledger | None = None,
) -> pd.DataFrame:
    """Return what each rule would have saved on a k = 3 agreement distribution.

    Assumes the three answers of a panorama came in random order (each of the 6 orders equally
    likely). A ``Unanimous`` panorama's first two answers agree; a ``2 vs 1`` panorama's first
    two agree with probability 1/3 (and then equal its median); an ``All disagree`` panorama
    never stops early (``stop_agree_or_low``: it stops on a 0 vs 1 pair, one order in three of
    ``{0, 1, x}``), and ``extend_disagreement`` asks a 4th volunteer, then a 5th unless the
    4th repeats one of the three answers: the per-file data cannot say how often, so the added
    tasks are given as a range (+1 to +2 per such panorama).

    Parameters
    ----------
    counts
        One row per panorama with ``<category>_median`` and ``<category>_agreement`` (Amnesty's
        ``amnesty_international_cameras_brooklyn.csv``).
    rules
        Rules to evaluate (:data:`RULES` but ``stop_posterior``, which needs the answers).
    category
        The category the rule decides on (the platform uses ``n_cameras``).
    ledger
        Receives rows left out (missing median or unknown agreement class), counted.

    Returns
    -------
    pandas.DataFrame
        One row per rule: ``rule, panoramas, tasks_fixed, tasks_saved (expected; for
        ``stop_agree_or_low`` the least, ``tasks_saved_max`` the most: the file does not say
        whether the odd answer of a ``2 vs 1`` panorama of median 0 or 1 is 0, 1 or more),
        tasks_added_min,
        tasks_added_max, net_saved_pct_min, net_saved_pct_max`` (``min``/``max``: the least and
        most saved, i.e. the most and least added) and the agreement class sizes.
    """
    ledger = ledger if ledger is not None else Ledger()
    med_col, agr_col = f"{category}_median", f"{category}_agreement"
    missing = [c for c in (med_col, agr_col) if c not in counts.columns]
    if missing:
        raise ContractError(
            f"counts lack column(s) {', '.join(missing)}; expected one row per panorama with "
            f"{med_col} and {agr_col} (values {', '.join(_AGREEMENT)})."
        )
    for rule in rules:
        _check(rule, 3, 5)
        if rule in _POSTERIOR:
            raise OptionError(
                f"rule={rule!r} decides on the answers themselves, which an agreement file does "
                f"not hold; expected one of {', '.join(_CLASS_RULES)}."
            )
    median = pd.to_numeric(counts[med_col], errors="coerce")
    agreement = counts[agr_col].astype("string")
    bad_median = median.isna()
    bad_class = ~agreement.isin(_AGREEMENT).fillna(False) & ~bad_median
    ledger.exclude("adaptive", f"panoramas with no numeric {med_col}", int(bad_median.sum()))
    ledger.exclude(
        "adaptive",
        f"panoramas whose {agr_col} is not one of {', '.join(_AGREEMENT)}",
        int(bad_class.sum()),
    )
    keep = ~(bad_median | bad_class)
    med = median[keep].to_numpy(dtype="float64")
    agr = agreement[keep].to_numpy(dtype=object)
    unanimous = agr == "Unanimous"
    two_one = agr == "2 vs 1"
    disagree = agr == "All disagree"
    zero = med == 0
    n = int(keep.sum())
    rows = []
    for rule in rules:
        saved = 0.0
        saved_max = None
        if rule in _STOP_LOW:
            # {v,v,x}: stops on the agreeing pair (1/3 of orders); {0,0,1} and {1,1,0} stop on
            # every pair, {0,0,x>1} and {1,1,x>1} do not: unknown, hence a range.
            saved = float(unanimous.sum()) + float(two_one.sum()) / 3
            saved += float((disagree & (med == 1)).sum()) / 3
            saved_max = saved + 2 * float((two_one & (med <= 1)).sum()) / 3
        if rule in _STOP_ZERO:
            saved = float((unanimous & zero).sum()) + float((two_one & zero).sum()) / 3
        if rule in _STOP_ANY:
            saved = float(unanimous.sum()) + float(two_one.sum()) / 3
        added_min = added_max = 0
        if rule in _EXTEND:
            added_min, added_max = int(disagree.sum()), 2 * int(disagree.sum())
        fixed = 3 * n
        rows.append(
            {
                "rule": rule,
                "panoramas": n,
                "unanimous": int(unanimous.sum()),
                "unanimous_zero": int((unanimous & zero).sum()),
                "two_vs_one": int(two_one.sum()),
                "two_vs_one_zero": int((two_one & zero).sum()),
                "all_disagree": int(disagree.sum()),
                "tasks_fixed": fixed,
                "tasks_saved": saved,
                "tasks_saved_max": saved if saved_max is None else saved_max,
                "tasks_added_min": added_min,
                "tasks_added_max": added_max,
                "net_saved_pct_min": 100.0 * (saved - added_max) / fixed if fixed else np.nan,
                "net_saved_pct_max": (
                    100.0 * ((saved if saved_max is None else saved_max) - added_min) / fixed
                    if fixed
                    else np.nan
                ),
            }
        )
    return pd.DataFrame(rows)
