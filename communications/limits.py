"""Limits of a communication's fields that the API, the importer and the model share.

They live in the domain so that the importer (and anything else below the API) can read them
without importing the API; the serializers read them from here.
"""

SUBJECT_MAX = 255  # the column's length
TEXT_MAX = 10_000  # comment, result, cancel_reason (text columns): the longest the API and the import take
