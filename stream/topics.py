"""Topic names of the pipeline."""

MAIL = "mail"
DELIVERIES = "deliveries"
FEEDBACK = "feedback"
LABELS = "labels"
REVIEWS = "reviews"
GOLD = "gold"
DEADLETTER = "deadletter"

ALL = (MAIL, DELIVERIES, FEEDBACK, LABELS, REVIEWS, GOLD, DEADLETTER)
