import type { ServerComponent } from './component.js';
import type { ServerConfig } from './config/server-config.js';

/**
 * The optional components a config asks for. Each one parses its own config section
 * and throws a ConfigError when it is wrong.
 */
export function componentsFor(config: ServerConfig): ServerComponent[] {
  const components: ServerComponent[] = [];
  // kubernetes: the Kubernetes source and authorization (config.kubernetes)
  // issuance: the issuance engine (config.issuance)
  void config;
  return components;
}
