// OAuthClientService and UserService (spec §5.3). A client secret is in the
// create response only; passwords are never returned. Translates messages;
// the controller decides.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  ListOAuthClientsResponseSchema,
  ListUsersResponseSchema,
  OAuthClientSchema,
  OAuthClientService,
  UserSchema,
  UserService,
} from "@heliosdb/replication-proto";
import type { OAuthClientController } from "../controller/oauth-clients";
import type { OAuthClientRow, UserRow } from "../store/oauth-clients";
import { callerOf } from "./context";
import { pagination } from "./views";

export function oauthClientMessage(row: OAuthClientRow) {
  return create(OAuthClientSchema, {
    clientId: row.id,
    name: row.name,
    redirectUris: row.redirectUris,
    grantTypes: row.grantTypes,
    tenantId: row.tenantId,
    roles: row.roles,
    permissions: row.permissions,
    confidential: !!row.secretHash,
    createdBy: row.createdBy,
    createdAt: timestampFromDate(row.createdAt),
  });
}

export function userMessage(row: UserRow) {
  return create(UserSchema, {
    userId: row.id,
    username: row.username,
    tenantId: row.tenantId,
    roles: row.roles,
    createdBy: row.createdBy,
    createdAt: timestampFromDate(row.createdAt),
    passwordSetAt: timestampFromDate(row.passwordSetAt),
  });
}

export function oauthClientService(controller: OAuthClientController): ServiceImpl<typeof OAuthClientService> {
  return {
    async createOAuthClient(req, ctx) {
      const { row, secret } = await controller.createClient(callerOf(ctx), {
        name: req.name,
        redirectUris: req.redirectUris,
        grantTypes: req.grantTypes,
        tenantId: req.tenantId,
        roles: req.roles,
        permissions: req.permissions,
        confidential: req.confidential,
      });
      return { client: oauthClientMessage(row), clientSecret: secret };
    },
    async getOAuthClient(req, ctx) {
      return { client: oauthClientMessage(await controller.getClient(callerOf(ctx), req.clientId)) };
    },
    async listOAuthClients(req, ctx) {
      const { rows, total, page, pageSize } = await controller.listClients(callerOf(ctx), req.tenantId, req.page, req.pageSize);
      return create(ListOAuthClientsResponseSchema, { clients: rows.map(oauthClientMessage), pagination: pagination(page, pageSize, total) });
    },
    async deleteOAuthClient(req, ctx) {
      await controller.deleteClient(callerOf(ctx), req.clientId);
      return { clientId: req.clientId };
    },
  };
}

export function userService(controller: OAuthClientController): ServiceImpl<typeof UserService> {
  return {
    async createUser(req, ctx) {
      return { user: userMessage(await controller.createUser(callerOf(ctx), { username: req.username, password: req.password, tenantId: req.tenantId, roles: req.roles })) };
    },
    async getUser(req, ctx) {
      return { user: userMessage(await controller.getUser(callerOf(ctx), req.userId)) };
    },
    async listUsers(req, ctx) {
      const { rows, total, page, pageSize } = await controller.listUsers(callerOf(ctx), req.tenantId, req.page, req.pageSize);
      return create(ListUsersResponseSchema, { users: rows.map(userMessage), pagination: pagination(page, pageSize, total) });
    },
    async deleteUser(req, ctx) {
      await controller.deleteUser(callerOf(ctx), req.userId);
      return { userId: req.userId };
    },
    async setUserPassword(req, ctx) {
      return { user: userMessage(await controller.setPassword(callerOf(ctx), req.userId, req.password)) };
    },
  };
}
