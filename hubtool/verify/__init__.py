"""Stage 3, verify: the folder's files checked against what they claim, and output parity of
every backend against an eager float32 reference judged by float64."""
