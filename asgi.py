from tandem.quart_app import create_app
from tandem.quart_app.process import tune_garbage_collector

app = create_app()
tune_garbage_collector()
