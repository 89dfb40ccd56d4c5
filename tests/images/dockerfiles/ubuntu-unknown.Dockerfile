FROM ubuntu:22.04
COPY app /app
CMD ["/app"]
