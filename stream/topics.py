"""Topic names of the pipeline."""

MAIL = "mail"
DELIVERIES = "deliveries"
FEEDBACK = "feedback"
LABELS = "labels"
REVIEWS = "reviews"
DEADLETTER = "deadletter"

ALL = (MAIL, DELIVERIES, FEEDBACK, LABELS, REVIEWS, DEADLETTER)
