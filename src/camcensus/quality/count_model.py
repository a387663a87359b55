"""The count model of ``stop_posterior``: volunteers' (and the detector's) count errors.

A panorama holds ``T`` cameras with prior probability ``prior[T]``; each volunteer's answer is
Binomial(``T``, detection) true tags plus Poisson(false rate) look-alikes, and the detector's
number of machine tags is one more such opinion with rates of its own. :func:`fit_count_model`
fits the model by EM on a project's own answers (gold panoramas pin the rates);
:func:`stop_cost` says what stopping a panorama now would cost in expected absolute error.
:mod:`camcensus.quality.adaptive` builds the ``stop_posterior`` rule on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import gammaln

from camcensus._errors import OptionError

__all__ = [
    "DETECTOR_FALSE_TAGS",
    "DETECTOR_RECALL",
    "CountModel",
    "count_likelihood",
    "fit_count_model",
    "stop_cost",
]

#: The detector's recall per camera, from docs/detect.md: 57 % of cameras are under 8 px
#: (recall 0.51), the rest are tagged with recall 0.93 (one detector on the synthetic city, at
#: score 0.5). Used to simulate machine tags (``simulate_adaptive``) and by :func:`stop_cost`
#: when the model has no fitted detector rates.
DETECTOR_RECALL = 0.57 * 0.51 + 0.43 * 0.93
#: The detector's false machine tags per panorama (docs/detect.md), same uses.
DETECTOR_FALSE_TAGS = 0.75
_T_MAX = 10
_A_EXTRA = 6


@dataclass(frozen=True)
class CountModel:
    """Volunteers' count errors and the panoramas' true counts, for ``stop_posterior``.

    A panorama holds ``T`` cameras with probability ``prior[T]``; a volunteer tags each of
    them with probability ``detection`` and adds Poisson(``false_rate``) look-alikes (the
    latent model of :mod:`camcensus.quality.latent`, with one detection rate and one false-tag
    rate for all volunteers). Fitted by :func:`fit_count_model` on the project's own answers.

    ``detector_recall`` and ``detector_false_rate``: the same two rates for the detector's
    machine tags, fitted with the volunteers' where the panoramas fitted on carry machine tags
    (None: not fitted; :func:`stop_cost` then falls back to :data:`DETECTOR_RECALL` and
    :data:`DETECTOR_FALSE_TAGS`).
    """

    prior: np.ndarray
    detection: float
    false_rate: float
    detector_recall: float | None = None
    detector_false_rate: float | None = None

    def __post_init__(self) -> None:
        prior = np.asarray(self.prior, dtype="float64")
        ok = prior.ndim == 1 and len(prior) >= 1 and (prior >= 0).all() and prior.sum() > 0
        det = (self.detector_recall, self.detector_false_rate)
        det_ok = det == (None, None) or (
            None not in det and 0 < float(det[0] or 0) <= 1 and float(det[1] or 0) >= 0
        )
        if not ok or not 0 < self.detection <= 1 or self.false_rate < 0 or not det_ok:
            raise OptionError(
                "CountModel: expected a prior over 0, 1, ... cameras (non-negative, not all 0), "
                f"0 < detection <= 1 and false_rate >= 0 (the detector's two rates likewise, or "
                f"both None); got detection={self.detection}, false_rate={self.false_rate}, "
                f"detector_recall={self.detector_recall}, "
                f"detector_false_rate={self.detector_false_rate}."
            )
        object.__setattr__(self, "prior", prior / prior.sum())

    def _detector_likelihood(self, tags: int, t_max: int) -> np.ndarray:
        """Return ``P(tags machine tags | T = t)``, ``t = 0..t_max`` (fitted or default rates)."""
        if tags < 0:
            raise OptionError(
                f"machine_tags={tags}: expected a count >= 0, or None when the detector was not "
                "run on the panorama."
            )
        if self.detector_recall is None or self.detector_false_rate is None:
            recall, false_rate = DETECTOR_RECALL, DETECTOR_FALSE_TAGS
        else:
            recall, false_rate = self.detector_recall, self.detector_false_rate
        row: np.ndarray = count_likelihood(recall, false_rate, max(tags, 1), t_max)[tags]
        return row


def count_likelihood(detection: float, false_rate: float, a_max: int, t_max: int) -> np.ndarray:
    """Return ``L[a, t] = P(answer a | T = t)`` for ``a = 0..a_max``, ``t = 0..t_max``.

    The answer is Binomial(``t``, ``detection``) true tags plus Poisson(``false_rate``) false
    ones.

    Examples
    --------
    >>> count_likelihood(0.5, 0.0, 2, 1).round(2).tolist()
    [[1.0, 0.5], [0.0, 0.5], [0.0, 0.0]]
    """
    s = np.arange(t_max + 1)
    t = np.arange(t_max + 1)
    binom = np.exp(
        gammaln(t[:, None] + 1.0)
        - gammaln(s[None, :] + 1.0)
        - gammaln(np.maximum(t[:, None] - s[None, :], 0) + 1.0)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        binom = binom * detection ** s[None, :] * (1.0 - detection) ** (t[:, None] - s[None, :])
    binom = np.where(s[None, :] <= t[:, None], np.nan_to_num(binom), 0.0)  # (T, S)
    a = np.arange(a_max + 1)
    gap = a[:, None] - s[None, :]
    pois = np.where(
        gap >= 0,
        np.exp(-false_rate + np.maximum(gap, 0) * np.log(max(false_rate, 1e-300)))
        / np.exp(gammaln(np.maximum(gap, 0) + 1.0)),
        0.0,
    )
    if false_rate == 0:
        pois = (gap == 0).astype("float64")
    out: np.ndarray = pois @ binom.T  # (A, T)
    return out


def _true_tag_means(p: float, f: float, a_max: int, t_max: int) -> np.ndarray:
    """Return ``E[true tags | answer a, T = t]`` for ``a = 0..a_max``, ``t = 0..t_max``.

    The sum over ``s`` of ``s · Bin(s; t, p) Pois(a − s; f)``, divided by ``P(a | t)``.
    """
    s = np.arange(t_max + 1)
    a = np.arange(a_max + 1)
    out = np.zeros((a_max + 1, t_max + 1))
    for t in range(t_max + 1):
        ss = s[: t + 1]
        b = np.exp(gammaln(t + 1.0) - gammaln(ss + 1.0) - gammaln(t - ss + 1.0))
        b = b * p**ss * (1.0 - p) ** (t - ss)
        gap = a[:, None] - ss[None, :]
        pois = np.where(
            gap >= 0,
            np.exp(-f + np.maximum(gap, 0) * np.log(f) - gammaln(np.maximum(gap, 0) + 1.0)),
            0.0,
        )
        w = pois * b[None, :]
        total = w.sum(axis=1)
        out[:, t] = np.where(total > 0, (w * ss[None, :]).sum(axis=1) / total, 0.0)
    return out


def _whole_counts(values: Any, name: str, ndim: int) -> np.ndarray:
    """Check an array of counts (negative = missing); return it as int64."""
    y = np.asarray(values, dtype="float64")
    if y.ndim != ndim or y.shape[0] == 0:
        what = "a panoramas × answers array" if ndim == 2 else "one count per panorama"
        raise OptionError(f"{name}: found shape {y.shape}; expected {what}, at least one row.")
    # NaN and infinities are neither counts nor the negative "missing" mark.
    bad = ~np.isfinite(y) | ((y >= 0) & (y != np.round(y)))
    if bad.any():
        where = ", ".join(str(int(i)) for i in np.argwhere(bad)[0])
        raise OptionError(
            f"{name}[{where}]: found {float(y[bad][0])!r} ({int(bad.sum())} such entries); "
            "expected whole camera counts (negative = missing)."
        )
    return np.where(y >= 0, y, -1).astype("int64")


def fit_count_model(
    answers: np.ndarray,
    *,
    truth: np.ndarray | None = None,
    machine_tags: np.ndarray | None = None,
    t_max: int = _T_MAX,
    iterations: int = 500,
    tol: float = 1e-7,
) -> CountModel:
    """Fit a :class:`CountModel` by EM on panoramas' answers (no truth needed).

    Parameters
    ----------
    answers
        Panoramas × answers camera counts (``n_cameras``); a negative entry is a missing
        answer (NaN, infinities and fractions are refused, naming the first one). Misses and
        false tags are told apart by panoramas with two answers or more (a pilot at k = 3, or
        gold panoramas); panoramas with one answer may be added (a rule that stopped them on
        the answers seen leaves the fit consistent).
    truth
        Per panorama, its true count where known (gold panoramas), else a negative value; the
        known ones pin the volunteers' rates and are left out of the prior (gold panoramas
        need not be a random sample).
    machine_tags
        Per panorama, the detector's number of machine tags, negative where the detector was
        not run (default: none). The detector is one more opinion with a recall and a
        false-tag rate of its own, fitted with the volunteers' (the gold panoramas pin them):
        the model's ``detector_recall`` and ``detector_false_rate``, which :func:`stop_cost`
        uses. Its tags then count in the posterior of each panorama's true count.
    t_max
        Most cameras a panorama may hold in the model.
    iterations, tol
        EM stops after ``iterations`` or when no parameter moves by more than ``tol``.

    Returns
    -------
    CountModel
    """
    y = _whole_counts(answers, "answers", 2)
    mask = y >= 0
    y = np.where(mask, y, 0)
    known = np.full(len(y), -1) if truth is None else np.asarray(truth, dtype="int64")
    if known.shape != (len(y),) or known.max(initial=-1) > t_max:
        raise OptionError(
            f"truth: found shape {known.shape}, largest {known.max(initial=-1)}; expected one "
            f"count per panorama ({len(y)}), at most t_max={t_max}."
        )
    tags = np.full(len(y), -1, dtype="int64")
    if machine_tags is not None:
        tags = _whole_counts(machine_tags, "machine_tags", 1)
        if tags.shape != (len(y),):
            raise OptionError(
                f"machine_tags: found {len(tags)} values; expected one per panorama ({len(y)}), "
                "-1 where the detector was not run on it."
            )
    has_tags = tags >= 0
    tags = np.where(has_tags, tags, 0)
    gold = known >= 0
    if gold.all():
        raise OptionError("truth: at least one panorama must be of unknown count (the prior).")
    a_max = max(int(y.max()), int(tags.max()), t_max) + _A_EXTRA
    prior = np.full(t_max + 1, 1.0 / (t_max + 1))
    p, f = 0.8, 0.1
    det_recall, det_false = (0.7, 0.5) if has_tags.any() else (None, None)
    s = np.arange(t_max + 1)
    n_answers = mask.sum(axis=1)
    for _ in range(iterations):
        lik = count_likelihood(p, f, a_max, t_max)  # (A, T)
        with np.errstate(divide="ignore"):
            loglik = np.where(mask[:, :, None], np.log(lik[y]), 0.0).sum(axis=1)  # (P, T)
            if det_recall is not None and det_false is not None:
                lik_det = count_likelihood(det_recall, det_false, a_max, t_max)
                loglik = loglik + np.where(has_tags[:, None], np.log(lik_det[tags]), 0.0)
        logpost = np.log(prior)[None, :] + loglik
        post = np.exp(logpost - logpost.max(axis=1, keepdims=True))
        post /= post.sum(axis=1, keepdims=True)
        post[gold] = np.eye(t_max + 1)[known[gold]]
        expected_true = (post[:, None, :] * _true_tag_means(p, f, a_max, t_max)[y]).sum(axis=2)
        expected_t = (post * s[None, :]).sum(axis=1)  # (P,)
        new_prior = post[~gold].mean(axis=0) + 1e-9
        new_prior /= new_prior.sum()
        seen = float((expected_true * mask).sum())
        present = float((expected_t * n_answers).sum())
        new_p = min(max(seen / present, 1e-6), 1.0) if present > 0 else p
        new_f = max(float(((y - expected_true) * mask).sum()) / float(mask.sum()), 1e-6)
        moved = max(abs(new_p - p), abs(new_f - f), float(np.abs(new_prior - prior).max()))
        if det_recall is not None and det_false is not None:
            means_det = _true_tag_means(det_recall, det_false, a_max, t_max)[tags]  # (P, T)
            true_det = (post * means_det).sum(axis=1)[has_tags]
            present_det = float(expected_t[has_tags].sum())
            new_det_recall = (
                min(max(float(true_det.sum()) / present_det, 1e-6), 1.0)
                if present_det
                else det_recall
            )
            new_det_false = max(float((tags[has_tags] - true_det).mean()), 1e-6)
            moved = max(moved, abs(new_det_recall - det_recall), abs(new_det_false - det_false))
            det_recall, det_false = new_det_recall, new_det_false
        prior, p, f = new_prior, new_p, new_f
        if moved < tol:
            break
    return CountModel(
        prior=prior,
        detection=p,
        false_rate=f,
        detector_recall=det_recall,
        detector_false_rate=det_false,
    )


def stop_cost(
    answers: Sequence[int],
    model: CountModel,
    *,
    k: int = 3,
    machine_tags: int | None = None,
) -> float:
    """Return the expected increase of a panorama's absolute count error from stopping now.

    Under ``model``, the posterior of the panorama's true count ``T`` given the answers so far
    (and, if given, the number of machine tags, with the model's fitted detector rates, else
    :data:`DETECTOR_RECALL` and :data:`DETECTOR_FALSE_TAGS`) predicts the answers still to
    come. The cost is
    ``E|median(answers) - T| - E|median(answers + the k - n next) - T|``: negative when the
    model expects the answers so far to be closer to the truth than the median of k.

    Parameters
    ----------
    answers
        The ``n_cameras`` counts so far, at least one and fewer than ``k``.
    model
        Fitted :class:`CountModel` (:func:`fit_count_model`).
    k
        Answers the panorama would get without stopping.
    machine_tags
        The detector's number of tags on the panorama, or None (not used).

    Returns
    -------
    float
        Expected change in absolute error, in cameras.

    Examples
    --------
    Volunteers who never miss and never invent: one answer of 0 is the truth.

    >>> model = CountModel(prior=np.array([0.5, 0.5]), detection=1.0, false_rate=0.0)
    >>> stop_cost([0], model, k=3)
    0.0
    """
    try:
        values = np.array([int(a) for a in answers], dtype="int64")
        whole = bool(np.array_equal(values, np.asarray(answers, dtype=float)))
    except (TypeError, ValueError):
        whole = False
    if not whole or not 1 <= len(values) < k or values.min() < 0:
        raise OptionError(
            f"answers={answers!r}: expected 1 to k - 1 = {k - 1} non-negative whole counts."
        )
    t_max = len(model.prior) - 1
    a_max = max(int(values.max()), t_max) + _A_EXTRA
    lik = count_likelihood(model.detection, model.false_rate, a_max, t_max)
    with np.errstate(divide="ignore"):
        logpost = np.log(model.prior) + np.log(lik[values]).sum(axis=0)
        if machine_tags is not None:
            logpost = logpost + np.log(model._detector_likelihood(int(machine_tags), t_max))
    if not np.isfinite(logpost).any():
        raise OptionError(f"answers={answers!r} are impossible under the model: refit it.")
    post = np.exp(logpost - logpost.max())
    post /= post.sum()
    t = np.arange(t_max + 1)
    now = float(np.median(values))
    e_now = float((post * np.abs(now - t)).sum())
    need = k - len(values)
    futures = np.indices((a_max + 1,) * need).reshape(need, -1).T  # (F, need)
    prob = np.prod(lik[futures], axis=1) * post[None, :]  # (F, T)
    full = np.concatenate([np.tile(values, (len(futures), 1)), futures], axis=1)
    med = np.median(full, axis=1)
    e_full = float((prob * np.abs(med[:, None] - t[None, :])).sum() / prob.sum())
    return e_now - e_full
