"""Live service: ingest protocol, frame client, session, publishing, feedback and control.

Import submodules directly (``samem.stream.protocol``, ``samem.stream.client``, ...); this
package imports nothing heavy so a frame sender needs only numpy and pyzmq.
"""
