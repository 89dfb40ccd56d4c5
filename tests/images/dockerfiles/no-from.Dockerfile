# a fragment, not a Dockerfile
RUN echo hello
