"""Services of the web app: models, uploads, the beat-image rule, the record pipeline, the dataset browser."""
