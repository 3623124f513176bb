# One image for the web server and both workers (compose.yaml picks the command).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 TANGO_DATA_DIR=/data
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
# The network editor's Cytoscape.js and dagre from the npm registry, hashes checked (visualizer/assets.py).
RUN python -m visualizer.assets
EXPOSE 8000
CMD ["python", "-m", "tango_site.webserver", "--host", "0.0.0.0", "--port", "8000"]
