"""Published tables (Delta Lake through delta-rs) and where they live.

`store` (a `Location` is a URI; the `TableStore` protocol), `local` (the ``file`` store),
`stores` (the store of each URI scheme), `delta` (`DeltaTables`: the warehouse),
`retention` (the retention delete and vacuum), `locks` (one build of a table at a time).
"""
