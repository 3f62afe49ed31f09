"""Benchmarks that print figures (`iris-bench perf`, `envs`), one kind of measurement a module:

    rows               the (name, value, unit) rows they all return, printed as a table or JSON
    training_speed     each component's step and an epoch, optimised against the reference mode (`perf`)
    precision          bf16 autocast against fp32: losses and training curves from the same weights (`perf --precision`)
    episode_store      the episode store's memory, disk, write and sampling times for 100k frames (`perf --store`)
    campaign_overhead  planning, submitting and `status` of a 26 x 5 campaign (`perf --campaign`)
    dead_tracker       a small campaign's wall time with a healthy and with a dead MLflow server (`perf --tracker`)
    learning           minutes and env steps until a preset reaches a test return, per seed (`perf --learn`)
    env_speed          random-action steps per second of a game (`envs`)
"""
