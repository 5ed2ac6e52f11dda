"""Label vocabularies, canonical structure names with SNOMED-CT codes, and harmonisation across models.

Vocabularies (JSON resources in ``organsegbench/resources/labels``): TotalSegmentator v2 ``total`` (117) and
``total_mr`` (50), TotalSegmentator v1 ``total_v1`` (104; IDC's NLST SEGs), MOOSE ``moose_clin_ct_organs`` (19) and
``organs`` (plain names for text-prompted models). Nothing here needs totalsegmentator, moosez or torch.

>>> from organsegbench.labels import get_vocabulary, canonical_name, harmonise
>>> canonical_name("left kidney")
'kidney_left'
>>> harmonise({44: "heart_myocardium", 13: "lung_upper_lobe_left"})
{44: 'heart', 13: 'lung_left'}
"""

from organsegbench.labels.codes import Code
from organsegbench.labels.harmonise import (
    harmonisation_levels,
    harmonisation_notes,
    harmonise,
    harmonised_labelmap,
    harmonised_name,
    resolve_entry,
)
from organsegbench.labels.match import MatchRow, StructureMatch, match_structures
from organsegbench.labels.registry import (
    canonical_name,
    catalogue,
    get_structure,
    get_vocabulary,
    list_structures,
    list_vocabularies,
    load_vocabulary,
    register_vocabulary,
)
from organsegbench.labels.structures import Structure, normalise
from organsegbench.labels.vocabulary import Vocabulary

__all__ = [
    "Code",
    "MatchRow",
    "Structure",
    "StructureMatch",
    "Vocabulary",
    "canonical_name",
    "catalogue",
    "get_structure",
    "get_vocabulary",
    "harmonisation_levels",
    "harmonisation_notes",
    "harmonise",
    "harmonised_labelmap",
    "harmonised_name",
    "list_structures",
    "list_vocabularies",
    "load_vocabulary",
    "match_structures",
    "normalise",
    "register_vocabulary",
    "resolve_entry",
]
