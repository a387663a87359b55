"""Verify tasks: volunteers confirm or reject the detector's machine tags.

Storage (no new table): the detector's detections on a panorama are one ``submissions`` row of
kind ``model`` (``decoder_id`` the model id, no assignment, never counted toward ``k``) with one
``tags`` row per detection (``machine`` true, ``score`` the detector's score). A volunteer's
verdict on a machine tag is a ``validations`` row: ``agree`` (a camera), ``disagree`` (not a
camera) or ``unsure``. A machine tag is settled by Project Sidewalk's margin rule
(:func:`camcensus.quality.adaptive.margin_needed`): :func:`verify_status`.

A machine tag alone never settles a camera: only ``confirmed`` machine tags (human verdicts)
count as human-confirmed cameras (:mod:`camcensus.locate`).
"""

from __future__ import annotations

__all__ = ["VERIFY_CAP", "VERIFY_MARGIN", "VERIFY_STATUSES", "verify_status"]

#: Lead of ``agree`` over ``disagree`` (or the reverse) that settles a machine tag.
VERIFY_MARGIN = 2
#: Most verdicts a machine tag gets; unsettled at the cap, it stays ``open`` (never confirmed).
VERIFY_CAP = 5
#: What :func:`verify_status` answers.
VERIFY_STATUSES = ("confirmed", "rejected", "open")


def verify_status(
    agree: int, disagree: int, *, margin: int = VERIFY_MARGIN, cap: int = VERIFY_CAP
) -> str:
    """Return ``confirmed``, ``rejected`` or ``open`` for a machine tag's verdicts.

    ``confirmed`` when ``agree - disagree >= margin``, ``rejected`` when
    ``disagree - agree >= margin``; otherwise ``open`` (``unsure`` verdicts count toward
    neither side). A tag that reached ``cap`` verdicts without a margin stays ``open``: it is
    never a human-confirmed camera.

    Examples
    --------
    >>> verify_status(2, 0)
    'confirmed'
    >>> verify_status(3, 2)
    'open'
    >>> verify_status(0, 2)
    'rejected'
    """
    from camcensus.quality.adaptive import margin_needed

    if margin_needed(agree, disagree, margin=margin, cap=max(cap, margin)) > 0:
        return "open"
    if agree - disagree >= margin:
        return "confirmed"
    if disagree - agree >= margin:
        return "rejected"
    return "open"
