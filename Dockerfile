# atleus-dist on the official Ray image of the pinned Ray version (see pyproject.toml).
FROM rayproject/ray:2.60.0-py311-cpu
WORKDIR /home/ray/atleus-dist
COPY --chown=ray:users pyproject.toml README.md ./
COPY --chown=ray:users atleus_dist ./atleus_dist
COPY --chown=ray:users cluster ./cluster
RUN pip install --no-cache-dir -e .
CMD ["atleus-dist", "--help"]
