"""Jobs: running the N parts of a split task locally or on a Slurm cluster (Kaldi's cmd.sh)."""
