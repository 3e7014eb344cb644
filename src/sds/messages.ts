/** Decoded request messages as @grpc/proto-loader gives them (keepCase, defaults). */

export interface NodeMessage {
  id?: string;
  cluster?: string;
  user_agent_name?: string;
  user_agent_version?: string;
}

export interface StatusMessage {
  code?: number;
  message?: string;
}

export interface DiscoveryRequest {
  version_info?: string;
  node?: NodeMessage | null;
  resource_names?: string[];
  type_url?: string;
  response_nonce?: string;
  error_detail?: StatusMessage | null;
}

export interface DeltaDiscoveryRequest {
  node?: NodeMessage | null;
  type_url?: string;
  resource_names_subscribe?: string[];
  resource_names_unsubscribe?: string[];
  initial_resource_versions?: Record<string, string>;
  response_nonce?: string;
  error_detail?: StatusMessage | null;
}
