//! The mesh methods a sync or chord node states as its own (instead of `Deref` to
//! [`MeshSocket`](crate::MeshSocket)): one list, written once, expanded into the `impl` of
//! each socket that holds a `mesh: MeshSocket` field.

/// Expands to `mesh()` and the delegating mesh methods inside an `impl` block of a type
/// with a `mesh: MeshSocket` field.
macro_rules! mesh_methods {
    () => {
        /// The mesh node underneath, for the [`MeshSocket`](crate::MeshSocket) methods not
        /// repeated on this type (`send_with`, `whisper_with`, `reply`, `recv_many`,
        /// `messages`, `request_peers` ...).
        pub fn mesh(&self) -> &crate::MeshSocket {
            &self.mesh
        }

        /// This node's id (see [`MeshSocket::id`](crate::MeshSocket::id)).
        pub fn id(&self) -> &str {
            self.mesh.id()
        }

        /// The protocol id peers must share (see
        /// [`MeshSocket::protocol_id`](crate::MeshSocket::protocol_id)).
        pub fn protocol_id(&self) -> &str {
            self.mesh.protocol_id()
        }

        /// The address the listener is bound to (see
        /// [`MeshSocket::local_addr`](crate::MeshSocket::local_addr)).
        pub fn local_addr(&self) -> std::net::SocketAddr {
            self.mesh.local_addr()
        }

        /// The address advertised to peers (see
        /// [`MeshSocket::out_addr`](crate::MeshSocket::out_addr)).
        pub fn out_addr(&self) -> (&str, u16) {
            self.mesh.out_addr()
        }

        /// Dials a node and waits until its handshake is in; returns its id (see
        /// [`MeshSocket::connect`](crate::MeshSocket::connect) for the errors).
        pub fn connect(&self, addr: impl std::net::ToSocketAddrs) -> Result<String, crate::Error> {
            self.mesh.connect(addr)
        }

        /// Dials the node `id` at `addr` unless a peer of that id is connected already (see
        /// [`MeshSocket::connect_with_id`](crate::MeshSocket::connect_with_id)).
        pub fn connect_with_id(
            &self,
            addr: impl std::net::ToSocketAddrs,
            id: &str,
        ) -> Result<String, crate::Error> {
            self.mesh.connect_with_id(addr, id)
        }

        /// Starts a dial and returns at once; the outcome arrives as a peer event (see
        /// [`MeshSocket::connect_nonblocking`](crate::MeshSocket::connect_nonblocking)).
        pub fn connect_nonblocking(
            &self,
            addr: impl std::net::ToSocketAddrs,
        ) -> Result<(), crate::Error> {
            self.mesh.connect_nonblocking(addr)
        }

        /// Closes the connection to a peer (see
        /// [`MeshSocket::disconnect`](crate::MeshSocket::disconnect)).
        pub fn disconnect(&self, id: &str) -> Result<(), crate::Error> {
            self.mesh.disconnect(id)
        }

        /// The peers whose handshake is complete (see
        /// [`MeshSocket::peers`](crate::MeshSocket::peers)).
        pub fn peers(&self) -> Result<Vec<crate::PeerInfo>, crate::Error> {
            self.mesh.peers()
        }

        /// Counters, state and the errors the node met (see
        /// [`MeshSocket::status`](crate::MeshSocket::status)).
        pub fn status(&self) -> Result<crate::Status, crate::Error> {
            self.mesh.status()
        }

        /// Waits until at least `n` peers are connected (see
        /// [`MeshSocket::wait_for_peers`](crate::MeshSocket::wait_for_peers)).
        pub fn wait_for_peers(
            &self,
            n: usize,
            timeout: std::time::Duration,
        ) -> Result<Vec<crate::PeerInfo>, crate::Error> {
            self.mesh.wait_for_peers(n, timeout)
        }

        /// The next peer event, waiting at most `timeout` (see
        /// [`MeshSocket::next_event`](crate::MeshSocket::next_event)).
        pub fn next_event(&self, timeout: std::time::Duration) -> Option<crate::PeerEvent> {
            self.mesh.next_event(timeout)
        }

        /// An iterator of peer events that waits for each (see
        /// [`MeshSocket::events`](crate::MeshSocket::events)).
        pub fn events(&self) -> crate::Events<'_> {
            self.mesh.events()
        }

        /// Broadcasts `packets` to every node of the network (see
        /// [`MeshSocket::send`](crate::MeshSocket::send)).
        pub fn send<P: AsRef<[u8]>>(&self, packets: &[P]) -> Result<(), crate::Error> {
            self.mesh.send(packets)
        }

        /// Sends `packets` to the node `id` alone (see
        /// [`MeshSocket::whisper`](crate::MeshSocket::whisper)).
        pub fn whisper<P: AsRef<[u8]>>(&self, id: &str, packets: &[P]) -> Result<(), crate::Error> {
            self.mesh.whisper(id, packets)
        }

        /// Registers a handler for the messages the protocol does not consume (see
        /// [`MeshSocket::register_handler`](crate::MeshSocket::register_handler)).
        pub fn register_handler(
            &self,
            handler: impl FnMut(&crate::Message, &crate::Connection) -> bool + Send + 'static,
        ) -> Result<(), crate::Error> {
            self.mesh.register_handler(handler)
        }

        /// The next message, if one is waiting (see
        /// [`MeshSocket::try_recv`](crate::MeshSocket::try_recv)).
        pub fn try_recv(&self) -> Option<crate::Message> {
            self.mesh.try_recv()
        }

        /// The next message, waiting for one; `None` once closed (see
        /// [`MeshSocket::recv`](crate::MeshSocket::recv)).
        pub fn recv(&self) -> Option<crate::Message> {
            self.mesh.recv()
        }

        /// The next message, waiting at most `timeout` (see
        /// [`MeshSocket::recv_timeout`](crate::MeshSocket::recv_timeout)).
        pub fn recv_timeout(&self, timeout: std::time::Duration) -> Option<crate::Message> {
            self.mesh.recv_timeout(timeout)
        }

        /// Stops the node: connections are closed and the event loop joined. Also done on
        /// drop (see [`MeshSocket::close`](crate::MeshSocket::close)).
        pub fn close(&self) {
            self.mesh.close()
        }

        /// Whether the socket is closed.
        pub fn is_closed(&self) -> bool {
            self.mesh.is_closed()
        }
    };
}

pub(crate) use mesh_methods;
