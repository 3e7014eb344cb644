/**
 * The one place that loads @peculiar/x509.
 *
 * The library resolves its algorithms through tsyringe, which needs a Reflect
 * metadata polyfill loaded *before* the library itself; ES modules evaluate
 * imports in order, so the side-effect import below must stay first. Other
 * folders should take the library from here (`import { x509 } from '../pki/index.js'`)
 * rather than import '@peculiar/x509' directly, or they get the polyfill error.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

// The library types this as the DOM `Crypto`, which this project's lib settings do
// not declare; node's webcrypto is that interface at runtime.
x509.cryptoProvider.set(webcrypto as never);

export { x509 };
