import type { ServerComponent } from './component.js';
import type { ServerConfig } from './config/server-config.js';
import { kubernetesComponent } from './kubernetes-component.js';
import { createIssuanceEngine } from './issuance/engine.js';

/**
 * The optional components a config asks for. Each one parses its own config section
 * and throws a ConfigError when it is wrong.
 */
export function componentsFor(config: ServerConfig): ServerComponent[] {
  const components: ServerComponent[] = [];
  if (config.kubernetes !== undefined) components.push(kubernetesComponent(config)); // Kubernetes source and authorization
  if (config.issuance !== undefined) components.push(createIssuanceEngine(config)); // the issuance engine
  void config;
  return components;
}
