// Importing this module registers every service implementation with the registry.
// (Each protocol's services add an import line here.)
import './udp.ts';
import './tcp.ts';
import './http.ts';

export {};
