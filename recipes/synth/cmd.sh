# How this recipe's split jobs run, as Kaldi's cmd.sh: `asr features` and `asr decode` get
# `--nj $nj --cmd "$train_cmd"` (or "$decode_cmd"). "local" runs the jobs on this machine, at
# most one per core. On a Slurm cluster, for example:
#   export train_cmd="slurm --mem 4G --cpus 1"
#   export decode_cmd="slurm --mem 8G --cpus 2 --partition cpu"
# (options: --mem --cpus --gpus --partition --time --account --max-jobs; docs/recipes.md).
# Training on several nodes: recipes/utils/slurm_train.sh.
export train_cmd="local"
export decode_cmd="local"
