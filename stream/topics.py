"""Topic names of the pipeline."""

MAIL = "mail"
DELIVERIES = "deliveries"
FEEDBACK = "feedback"
LABELS = "labels"
REVIEWS = "reviews"
GOLD = "gold"
EMAILS = "emails"          # email id + the features the learner uses (never the truth)
DEADLETTER = "deadletter"

ALL = (MAIL, DELIVERIES, FEEDBACK, EMAILS, LABELS, REVIEWS, GOLD, DEADLETTER)
