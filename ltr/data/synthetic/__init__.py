"""The embedded synthetic data set: ltr runs end to end with no download at all.

`generate_synthetic` draws a "world" (concept ratings, lifestyle topics, the appeal model) from
the seed alone, then profiles, detections and labels from it, in the same shape as the real
challenge data (`aware2023`) and calibrated to its published facts (see /work/shared/DATA.md).
The labels follow a documented generative model with structure that a weighted sum of ratings
only partly captures, so better models have something to find. Per user and situation, the
clean appeal is a weighted sum of standardised parts (weights: `APPEAL_WEIGHTS`):

* ratings: tanh of the standardised mean per-image sum of the ratings of the concepts shown
  (saturating: a very "good" profile is not much better than a good one);
* three key concepts whose presence (share of images showing them) moves the appeal regardless
  of their rating; the first one acts *against* its rating;
* one pair of concepts that matters only when both are in the profile;
* profile size (a mild effect of the number of images);
* an overall impression shared between situations (correlated like the real labels), partly
  visible in the photos (the user's lifestyle topics), partly hidden.

The result is scaled to sd `CLEAN_SD`; a label is the mean of `N_ANNOTATORS` judgements with
heavy-tailed errors, correlated across situations (one annotator judges all four).

Everything is vectorised numpy and deterministic by seed: 100,000 users generate in seconds.

Modules: `world` (concepts, topics, ratings, key concepts, profile sampling), `labels` (appeal
components, annotator noise, noise ceiling), `generator` (the `Dataset` and `SyntheticData`),
`truth` (`synthetic_truth.json`) and `writer` (the folder on disk).
"""

from ltr.data.synthetic.generator import (
    LABELLED_SPLITS,
    MIN_USERS,
    SPLIT_SHARES,
    SyntheticData,
    generate_synthetic,
    split_sizes,
)
from ltr.data.synthetic.labels import (
    ANNOTATOR_DF,
    APPEAL_WEIGHTS,
    CLEAN_SD,
    IMPRESSION_CORRELATION,
    IMPRESSION_VISIBLE,
    N_ANNOTATORS,
    NOISE_CORRELATION,
    NOISE_SD,
    PRESENCE_SCALE,
    SATURATION,
    AppealModel,
)
from ltr.data.synthetic.truth import TRUTH_FILE, truth_document
from ltr.data.synthetic.world import (
    CONFIDENCE_BETA,
    CONFIDENCE_MIN,
    DETECTIONS_PER_IMAGE,
    EDGE_END,
    EDGE_START,
    FREQUENCY_ANCHORS,
    GENERIC_SHARE,
    ID_ALPHABET,
    ID_LENGTH,
    IMAGE_HEIGHTS,
    IMAGE_WIDTH,
    IMAGES_MAX,
    IMAGES_MIN,
    IMAGES_SCALE,
    IMAGES_SHAPE,
    N_CONCEPTS,
    N_GENERIC_TOP,
    N_NEVER,
    N_TOPICS,
    RATING_IDIOSYNCRATIC,
    RATING_IRRELEVANT,
    RATING_LOADING,
    RATING_MEAN,
    RATING_TOPIC_SD,
    RATING_VOTE_SD,
    RATING_VOTERS,
    REPEAT_CONCEPT,
    TOPIC_ALPHA,
    TOPIC_LEAK,
)
from ltr.data.synthetic.writer import write_synthetic

__all__ = [
    "ANNOTATOR_DF",
    "APPEAL_WEIGHTS",
    "CLEAN_SD",
    "CONFIDENCE_BETA",
    "CONFIDENCE_MIN",
    "DETECTIONS_PER_IMAGE",
    "EDGE_END",
    "EDGE_START",
    "FREQUENCY_ANCHORS",
    "GENERIC_SHARE",
    "ID_ALPHABET",
    "ID_LENGTH",
    "IMAGES_MAX",
    "IMAGES_MIN",
    "IMAGES_SCALE",
    "IMAGES_SHAPE",
    "IMAGE_HEIGHTS",
    "IMAGE_WIDTH",
    "IMPRESSION_CORRELATION",
    "IMPRESSION_VISIBLE",
    "LABELLED_SPLITS",
    "MIN_USERS",
    "NOISE_CORRELATION",
    "NOISE_SD",
    "N_ANNOTATORS",
    "N_CONCEPTS",
    "N_GENERIC_TOP",
    "N_NEVER",
    "N_TOPICS",
    "PRESENCE_SCALE",
    "RATING_IDIOSYNCRATIC",
    "RATING_IRRELEVANT",
    "RATING_LOADING",
    "RATING_MEAN",
    "RATING_TOPIC_SD",
    "RATING_VOTERS",
    "RATING_VOTE_SD",
    "REPEAT_CONCEPT",
    "SATURATION",
    "SPLIT_SHARES",
    "TOPIC_ALPHA",
    "TOPIC_LEAK",
    "TRUTH_FILE",
    "AppealModel",
    "SyntheticData",
    "generate_synthetic",
    "split_sizes",
    "truth_document",
    "write_synthetic",
]
