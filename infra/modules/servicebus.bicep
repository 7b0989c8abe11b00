// Service Bus: the jobs queue (API -> Durable starter function) and the alerts topic with one
// subscription per delivery channel. Local (SAS key) auth is disabled: senders and receivers
// use Entra ID roles (roles.bicep).

param location string
param tags object
param namespaceName string
param skuName string
param jobsQueueName string
param alertsTopicName string
param alertSubscriptionNames array

resource namespace 'Microsoft.ServiceBus/namespaces@2021-11-01' = {
  name: namespaceName
  location: location
  tags: tags
  sku: {
    name: skuName
    tier: skuName
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
  }
}

// A job message starts or terminates an orchestration; the starter is idempotent (the job id
// is the instance id), so redelivery is safe. Five minutes of lock covers a slow cold start.
resource jobsQueue 'Microsoft.ServiceBus/namespaces/queues@2021-11-01' = {
  parent: namespace
  name: jobsQueueName
  properties: {
    lockDuration: 'PT5M'
    maxDeliveryCount: 5
    defaultMessageTimeToLive: 'P1D'
    deadLetteringOnMessageExpiration: true
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'PT10M'
  }
}

resource alertsTopic 'Microsoft.ServiceBus/namespaces/topics@2021-11-01' = {
  parent: namespace
  name: alertsTopicName
  properties: {
    defaultMessageTimeToLive: 'P7D'
    // the message id is the alert id: a republished alert (outbox retry) is dropped
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'P1D'
  }
}

resource alertSubscriptions 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2021-11-01' = [
  for subscriptionName in alertSubscriptionNames: {
    parent: alertsTopic
    name: subscriptionName
    properties: {
      lockDuration: 'PT1M'
      maxDeliveryCount: 5 // as the local in-process bus: then dead-lettered
      deadLetteringOnMessageExpiration: true
    }
  }
]

output namespaceName string = namespace.name
output fullyQualifiedNamespace string = '${namespace.name}.servicebus.windows.net'
