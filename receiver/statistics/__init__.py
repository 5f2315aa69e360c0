"""Statistics: what the receiver computes over its history, the read side (`read_*`, what the API, the dashboard
and `alert-receiver stats` ask) and the write side (`write_*`, what keeps the pre-aggregates and rollups).

Read side:
- read_summary     counts, MTTA/MTTR, escalations, notification outcomes over a period (`summary`), counts per
                   time slot for trends (`slot_counts`), escalations by level pair; where the numbers come from
- read_top         top lists (count, duration, escalations, noise) and flapping fingerprints
- read_sla         SLA compliance per level, target and service (the summary's `sla`)
- read_percentiles MTTA/MTTR distributions: exact from raw rows, or from the duration sketches (which method)
- read_aggregates  reading the pre-aggregates and rollups: a period's plan (aggregate rows vs raw rows), their sums
- read_correlations  occurrences related to one (same group, instance, service; manual links)
- read_export      the filtered history streamed as CSV, JSON or NDJSON

Write side:
- write_aggregates  the pre-aggregate tables: their layout, state and watermark, re-deriving hours (SQL)
- write_sketches   the duration sketches beside the pre-aggregates (log bins of 0.5 %, per hour, 6 hours, day)
- write_refresh     the refresh that moves the watermark, in short transactions (the engine's stats loop,
                    `alert-receiver stats refresh`)
- write_rollups     the daily rollups retention keeps of what it deletes, and the duration histogram buckets
- write_correlations  manual correlation links (POST /api/v1/correlations)

The write modules define what is stored (table layout, histogram buckets, the SQL of MTTA/MTTR): read modules import
those definitions, write modules never import read ones. This package uses receiver.store (tables, transactions,
the history filter `store.queries`), never receiver.web or receiver.engine; store never imports it.
"""
