# Optional (hub: {push: true}): every built variant, model card included, to the Hugging Face Hub. A local rule,
# like the downloads: it needs the internet. The token is the user's Hub login or HF_TOKEN, never the config's.


rule push_variant:
    input:
        "resources/models/{built_variant}",
    output:
        "results/hub/{built_variant}.json",
    log:
        "results/logs/hub/{built_variant}.log",
    localrule: True
    conda:
        TORCH_ENV
    params:
        namespace=config["hub"]["namespace"],
        private=config["hub"]["private"],
    script:
        "../scripts/push_variant.py"
