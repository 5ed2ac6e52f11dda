"""Review session state (verdict per structure x model, notes, position), saved atomically as JSON + CSV.

Qt-free and Slicer-free: the SegmentationReview module keeps one :class:`ReviewSession` in sync with its
parameter node; scripts can read and write the same files.
"""

from organsegbench.review.atomic import atomic_write_text
from organsegbench.review.find import find_segmentations_for_series, referenced_series_uids, series_uid_of
from organsegbench.review.session import REVIEW_FILE_VERSION, ReviewEntry, ReviewSession, Verdict

__all__ = [
    "REVIEW_FILE_VERSION", "ReviewEntry", "ReviewSession", "Verdict", "atomic_write_text",
    "find_segmentations_for_series", "referenced_series_uids", "series_uid_of",
]
