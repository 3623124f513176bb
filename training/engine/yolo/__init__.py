"""Object detection: the YOLOv7 family and YOLO11 as ultralytics model YAMLs, and offline ultralytics training."""
